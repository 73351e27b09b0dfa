package syncer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Deleting at the destination (--delete) under --max-delete: the merge
// collects what is only at the destination, and the decision waits until
// the destination's total is known. Memory is one relative path per
// deletion.

// deletions is what a run found to delete.
type deletions struct {
	ents  []deletion // in key order
	total int64      // destination entries the merge saw (after filters)
	// dirs holds, during a download, local files to be deleted whose name
	// a source key uses as a folder ("x/" for the file "x" and the key
	// "x/y"); pruned as the source moves past them.
	dirs map[string]bool
	// waiting are the source entries whose download needs such a file
	// gone first: they go after the deletions, or not at all.
	waiting []entry
	seen    int
}

// deletion is one destination entry to delete; up, for a local empty
// directory, is how many of its parents may go with it if that leaves them
// empty (decided during the merge, when the source keys around it are
// known: see emptyParents).
type deletion struct {
	e  entry
	up int
}

func (d *deletions) add(e entry, up int, download bool) {
	d.ents = append(d.ents, deletion{e, up})
	if download && !IsMarker(e.rel) {
		if d.dirs == nil {
			d.dirs = map[string]bool{}
		}
		name := e.rel
		if e.link {
			name = strings.TrimSuffix(name, LinkSuffix) // the link's own name
		}
		d.dirs[name+"/"] = true
	}
}

// countedStream counts the entries a stream yields.
type countedStream struct {
	stream
	n *int64
}

func (s countedStream) next() (entry, bool) {
	e, ok := s.stream.next()
	if ok {
		*s.n++
	}
	return e, ok
}

// waitsForDelete holds back the download of s when a local file to be
// deleted stands where s needs a folder (the file "x", the key "x/y").
// Before deletions waited for the total, they ran inline in key order,
// which put "x" before "x/y"; such conflicts are rare, so the few entries
// held back wait in memory.
func (rc *run) waitsForDelete(s entry) bool {
	d := &rc.del
	if rc.dir != Download || len(d.dirs) == 0 {
		return false
	}
	if d.seen++; d.seen%1024 == 0 {
		for dirKey := range d.dirs {
			// Keys below "x/" sort before "x0" ('0' follows '/').
			if dirKey[:len(dirKey)-1]+"0" <= s.rel {
				delete(d.dirs, dirKey)
			}
		}
	}
	for i := 0; i < len(s.rel); i++ {
		if s.rel[i] == '/' && d.dirs[s.rel[:i+1]] {
			d.waiting = append(d.waiting, s)
			return true
		}
	}
	return false
}

// finishDeletes deletes what the merge collected if opts.MaxDelete allows
// it, else deletes nothing and records why in rc.refused. complete is false
// when a listing broke off or the run was cancelled: what seemed to be only
// at the destination is then unproven, and nothing is deleted.
func (rc *run) finishDeletes(complete bool) {
	d := &rc.del
	n := int64(len(d.ents))
	if n == 0 || !complete {
		return
	}
	if !rc.opts.MaxDelete.Allows(n, d.total) {
		what := "objects"
		if !rc.dst.IsS3 {
			what = "files"
		}
		rc.refused = &DeleteRefusal{N: n, Total: d.total, Where: rc.dst.Arg, What: what, Limit: rc.opts.MaxDelete, DryRun: rc.opts.DryRun}
		for _, s := range d.waiting {
			rc.skip(rc.src.Show(s.rel), errors.New("a local file of the same name as its folder was not deleted (--max-delete)"))
		}
		return
	}
	switch {
	case rc.opts.DryRun:
		for _, del := range d.ents {
			rc.opts.Report(Event{Kind: EventDone, Op: "delete", Src: rc.show(rc.dst, del.e), DryRun: true})
		}
	case !rc.dst.IsS3:
		// Cheap, and the held-back downloads need them done first.
		for _, del := range d.ents {
			rc.deleteLocal(del)
		}
	default:
		for i := 0; i < len(d.ents); i += 1000 {
			batch := d.ents[i:min(i+1000, len(d.ents))]
			keys, etags := make([]string, len(batch)), make([]string, len(batch))
			for j, del := range batch {
				keys[j], etags[j] = rc.dst.S3.Prefix+del.e.rel, del.e.etag
			}
			rc.flushDeletes(keys, etags)
		}
	}
	d.ents = nil
	for _, s := range d.waiting {
		if localPath, ok := rc.target(s); ok {
			rc.transfer(s, entry{}, false, localPath)
		}
	}
}

// deleteLocal deletes a file, a symlink (never what it points to), or an
// empty directory and then the parents del.up allows, if empty.
func (rc *run) deleteLocal(del deletion) {
	shown := rc.show(rc.dst, del.e)
	rel := strings.TrimSuffix(del.e.rel, "/")
	if del.e.path != "" {
		r, err := filepath.Rel(rc.dst.Local, del.e.path)
		if err != nil {
			rc.c.failed.Add(1)
			rc.opts.Report(Event{Kind: EventFailed, Op: "delete", Src: shown, Err: err})
			return
		}
		rel = filepath.ToSlash(r)
	}
	remove := rc.root.Remove
	if IsMarker(del.e.rel) {
		remove = func(rel string) error { return removeEmptyDir(rc.root, rel) }
	}
	if err := remove(rel); errors.Is(err, errNotEmpty) {
		return // got entries since the walk: not ours to delete
	} else if err != nil && !os.IsNotExist(err) {
		rc.c.failed.Add(1)
		rc.opts.Report(Event{Kind: EventFailed, Op: "delete", Src: shown, Err: err})
		return
	}
	rc.c.deleted.Add(1)
	rc.opts.Report(Event{Kind: EventDone, Op: "delete", Src: shown})
	if del.up > 0 {
		rc.removeEmptyParents(del.e.rel, del.up)
	}
}

// flushDeletes deletes keys at the S3 destination in one batch request.
func (rc *run) flushDeletes(keys []string, etags []string) {
	rc.pool.submit(rc.ctx, func() {
		failed := rc.deleteListed(keys, etags)
		bad := map[string]error{}
		for _, f := range failed {
			bad[f.Key] = f.Err
		}
		for _, k := range keys {
			shown := rc.dst.S3.URL(k)
			if err, ok := bad[k]; ok {
				rc.c.failed.Add(1)
				rc.opts.Report(Event{Kind: EventFailed, Op: "delete", Src: shown, Err: err})
				continue
			}
			rc.c.deleted.Add(1)
			rc.opts.Report(Event{Kind: EventDone, Op: "delete", Src: shown})
		}
	})
}
