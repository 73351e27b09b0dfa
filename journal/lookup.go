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
