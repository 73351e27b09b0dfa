package mirror

import (
	"io/fs"
	"slices"
	"sync"
	"syscall"
)

// Hardlinks knows the names of WORKDIR's files that have more than one
// (hard links: cp -al, rsync -H, git, ccache and package managers make
// them). S3 has no hard links: each name is its own object, so a change
// made through one name must be sent under every name, or the objects of
// the others keep the old content while status says all is synced.
//
// The mount's start-up scan notes every such file (cache.ScanLinked); the
// drain notes each name it syncs that has more than one link, and when it
// syncs one, records the others whose cache entries no longer match. A
// restore gives separate files.
type Hardlinks struct {
	mu    sync.Mutex
	names map[inode][]string
	of    map[string]inode
	dirty map[inode]bool
}

type inode struct{ dev, ino uint64 }

// NewHardlinks is an empty index.
func NewHardlinks() *Hardlinks {
	return &Hardlinks{names: map[inode][]string{}, of: map[string]inode{}, dirty: map[inode]bool{}}
}

// Note records that rel is a name of the file dev/ino.
func (h *Hardlinks) Note(rel string, dev, ino uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.noteLocked(rel, inode{dev, ino})
}

func (h *Hardlinks) noteLocked(rel string, k inode) {
	if old, ok := h.of[rel]; ok {
		if old == k {
			return
		}
		h.dropLocked(rel, old)
	}
	h.of[rel] = k
	h.names[k] = append(h.names[k], rel)
}

func (h *Hardlinks) dropLocked(rel string, k inode) {
	delete(h.of, rel)
	ns := slices.DeleteFunc(h.names[k], func(n string) bool { return n == rel })
	if len(ns) == 0 {
		delete(h.names, k)
		delete(h.dirty, k)
	} else {
		h.names[k] = ns
	}
}

// Changed marks rel's file, if it has other names, as changed: the start-up
// scan found it differs from the cache (see ChangedNames).
func (h *Hardlinks) Changed(rel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if k, ok := h.of[rel]; ok {
		h.dirty[k] = true
	}
}

// ChangedNames calls fn for every name of the files marked Changed.
func (h *Hardlinks) ChangedNames(fn func(rel string)) {
	h.mu.Lock()
	var all []string
	for k := range h.dirty {
		all = append(all, h.names[k]...)
	}
	clear(h.dirty)
	h.mu.Unlock()
	for _, n := range all {
		fn(n)
	}
}

// others notes rel (lstat st) as a name of its file and returns its other
// known names.
func (h *Hardlinks) others(rel string, st *syscall.Stat_t) []string {
	k := inode{uint64(st.Dev), st.Ino}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.noteLocked(rel, k)
	var out []string
	for _, n := range h.names[k] {
		if n != rel {
			out = append(out, n)
		}
	}
	return out
}

// othersOf forgets rel, which is gone, and returns the other names of the
// file it was a name of.
func (h *Hardlinks) othersOf(rel string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	k, ok := h.of[rel]
	if !ok {
		return nil
	}
	h.dropLocked(rel, k)
	return slices.Clone(h.names[k])
}

// forget drops rel, no longer a name of the file it was noted for.
func (h *Hardlinks) forget(rel string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if k, ok := h.of[rel]; ok {
		h.dropLocked(rel, k)
	}
}

// followLinks is called for every file or symlink the drain syncs: when it
// has other names, those whose cache entries no longer match what the
// file is now (size, mtime, mode, owner) are recorded as changed, so they
// are sent too. Names that are another file now are forgotten.
func (d *Drainer) followLinks(rel string, info fs.FileInfo) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || info.IsDir() {
		return
	}
	if st.Nlink <= 1 {
		d.links.forget(rel)
		return
	}
	for _, n := range d.links.others(rel, st) {
		d.checkName(n, st)
	}
}

// removedLink is called when rel is gone: a change made through it just
// before it was removed (ln a b; chmod 600 a; rm a) coalesced into its
// removal, so the other names of its file are checked now.
func (d *Drainer) removedLink(rel string) {
	for _, n := range d.links.othersOf(rel) {
		d.checkName(n, nil)
	}
}

// checkName records n as changed if its cache entry no longer matches the
// file it names (still the file st describes, when st is set).
func (d *Drainer) checkName(n string, st *syscall.Stat_t) {
	info, err := lstatBeneath(d.workdir, n)
	var osys *syscall.Stat_t
	if err == nil {
		osys, _ = info.Sys().(*syscall.Stat_t)
	}
	if osys == nil || st != nil && (osys.Dev != st.Dev || osys.Ino != st.Ino) {
		d.links.forget(n)
		return
	}
	e, ok, err := d.c.Get(n)
	if err != nil || ok && e.Size == info.Size() && e.Mtime.Equal(info.ModTime()) && !e.MetaDiffers(info) {
		return
	}
	d.j.Changed(n)
}
