package journal

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// Has reports whether path has a change the bucket does not hold yet: a
// record queued for commit, pending, or failed (a rename's old name counts:
// its removal is recorded). The mount's pull asks it before it replaces or
// removes a file in WORKDIR, so an edit not yet sent is never overwritten.
func (j *Journal) Has(path string) (bool, error) {
	j.mu.Lock()
	for _, ops := range [][]op{j.queue, j.inCommit} {
		for _, o := range ops {
			if o.fn == nil && (o.path == path || o.kind == OpRenamed && o.from == path) {
				j.mu.Unlock()
				return true, nil
			}
		}
	}
	j.mu.Unlock()
	found := false
	err := j.db.View(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		found = b.pending.Get([]byte(path)) != nil || b.failed.Get([]byte(path)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("journal: has %q: %w", path, err)
	}
	return found, nil
}

// Covered reports, for each of paths, whether a removal of it is already
// the journal's: a committed record (pending or failed) for the path
// itself, or for a directory above it that was removed or renamed (a tree
// record: its drain removes what is gone below it). The mount's start-up
// scan asks it of the files it finds gone, so that --max-delete counts
// only removals nobody has decided on yet. Records still queued are not
// looked at. One read transaction for all of paths; directories shared by
// neighbours (paths come in the scan's order) are looked up once.
func (j *Journal) Covered(paths []string) ([]bool, error) {
	out := make([]bool, len(paths))
	tree := map[string]bool{} // directory → holds a tree record
	err := j.db.View(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		get := func(p string) []byte {
			if v := b.pending.Get([]byte(p)); v != nil {
				return v
			}
			return b.failed.Get([]byte(p))
		}
		isTree := func(dir string) bool {
			if t, ok := tree[dir]; ok {
				return t
			}
			t := false
			if v := get(dir); v != nil {
				r, err := unmarshalRecord(dir, v)
				t = err == nil && r.IsDir
			}
			tree[dir] = t
			return t
		}
		for i, p := range paths {
			if get(p) != nil {
				out[i] = true
				continue
			}
			for k := 0; k < len(p) && !out[i]; k++ {
				if p[k] == '/' {
					out[i] = isTree(p[:k])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("journal: covered: %w", err)
	}
	return out, nil
}
