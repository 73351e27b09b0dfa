package mirror

import "github.com/s3sync/s3sync/syncer"

// Ordering: which records must wait for others in flight.

// blocked reports whether a record for path must wait because an in-flight
// rename may still copy server-side from path, from a file below it, or
// from a file inside a directory path names (whose removal would delete
// it): a PUT, DELETE or copy there could overtake the copy. The copy is
// conditional on the ETag the cache recorded anyway (a copy that lost the
// race is refused and the file uploaded instead); holding back keeps that
// rare. Called with d.mu held.
//
// Likewise a path below an in-flight tree record waits: the tree's copy or
// upload of that key and the path's own upload would race, and the one to
// land last, possibly the older content, would stay.
func (d *Drainer) blocked(path string) bool {
	for src := range d.sources {
		if path == src || syncer.Under(path, src) || syncer.Under(src, path) {
			return true
		}
	}
	for p, tree := range d.inflight {
		if tree && syncer.Under(path, p) {
			return true
		}
	}
	return false
}

// inflightBelow reports whether a record below dir is in flight: a tree
// record must wait for it, or an upload landing after a tree removal walked
// the cache would leave its object behind, and one racing a tree's copy of
// the same key could leave the older content. Called with d.mu held.
func (d *Drainer) inflightBelow(dir string) bool {
	for p := range d.inflight {
		if syncer.Under(p, dir) {
			return true
		}
	}
	return false
}

// claim marks rel in flight for work beside the drain loop (the pull), so
// that the loop leaves it alone until release is called. It claims nothing
// and reports false while the drain has rel, a rename from it, or a tree
// record above it in flight. release wakes the loop: a record of rel may
// have waited.
func (d *Drainer) claim(rel string) (release func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, busy := d.inflight[rel]; busy || d.blocked(rel) {
		return nil, false
	}
	d.inflight[rel] = false
	return func() {
		d.mu.Lock()
		delete(d.inflight, rel)
		d.mu.Unlock()
		d.poke()
	}, true
}
