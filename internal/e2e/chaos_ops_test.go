package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// TestChaos's operations of issues 20 and 24: hard links (of files and of
// symlinks, then written through either name), FIFOs and device nodes
// (absent from the bucket, listed by status as skipped), two writers on
// disjoint ranges of one file, and writes through a shared mapping.

// setContent gives rel, and every other name of its file, content b.
func (w *workload) setContent(rel string, b []byte) {
	w.files[rel] = b
	for _, o := range w.otherNames(rel) {
		w.files[o] = b
	}
}

// setMode gives rel, and every other name of its file, mode m.
func (w *workload) setMode(rel string, m os.FileMode) {
	w.modes[rel] = m
	for _, o := range w.otherNames(rel) {
		w.modes[o] = m
	}
}

// otherNames are the other names of rel's file or symlink.
func (w *workload) otherNames(rel string) []string {
	g, ok := w.ino[rel]
	if !ok {
		return nil
	}
	var out []string
	for _, k := range sortedKeys(w.ino) {
		if k != rel && w.ino[k] == g {
			out = append(out, k)
		}
	}
	return out
}

// moveNames is the model's side of renaming directory from to to for hard
// link groups and special files (rename moves files, links and dirs).
func (w *workload) moveNames(from, to string) {
	for _, k := range sortedKeys(w.ino) {
		if strings.HasPrefix(k, from+"/") {
			w.ino[to+strings.TrimPrefix(k, from)] = w.ino[k]
			delete(w.ino, k)
		}
	}
	for _, k := range sortedKeys(w.specials) {
		if strings.HasPrefix(k, from+"/") {
			w.specials[to+strings.TrimPrefix(k, from)] = w.specials[k]
			delete(w.specials, k)
		}
	}
}

// link makes a hard link to, a new name of from's file or symlink.
func (w *workload) link(from, to string) {
	w.must(os.Link(w.abs(from), w.abs(to)))
	g, ok := w.ino[from]
	if !ok {
		w.nextIno++
		g = w.nextIno
		w.ino[from] = g
	}
	w.ino[to] = g
	if b, ok := w.files[from]; ok {
		w.files[to], w.modes[to] = b, w.modes[from]
	} else {
		w.links[to] = w.links[from]
	}
}

// hardLink is ln FILE NAME, then a write through one of the names: the
// objects of all names must end up with the same bytes and mode.
func (w *workload) hardLink() bool {
	from, ok := w.pickFile()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "f")
	w.logf("ln %s %s (other names: %v)", from, to, w.otherNames(from))
	w.link(from, to)
	through := []string{from, to}[w.rng.IntN(2)]
	switch w.rng.IntN(3) {
	case 0:
		add := w.content(1 + w.rng.IntN(8<<10))
		w.logf("  append %d bytes through %s", len(add), through)
		f, err := os.OpenFile(w.abs(through), os.O_WRONLY|os.O_APPEND, 0)
		w.must(err)
		_, err = f.Write(add)
		w.must(err)
		w.must(f.Close())
		w.setContent(through, append(append([]byte(nil), w.files[through]...), add...))
	case 1:
		n := w.size()
		w.logf("  overwrite %s in place (%d bytes)", through, n)
		w.write(through, w.content(n))
	}
	return true
}

// hardLinkSymlink is ln of a symlink (link(2) does not follow it): two
// names of one symlink, each its own .rclonelink object.
func (w *workload) hardLinkSymlink() bool {
	from, ok := w.pickLink()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "l")
	w.logf("ln %s %s (a symlink to %s)", from, to, w.links[from])
	w.link(from, to)
	return true
}

// specialKind is how the model names a special file's type.
func specialKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "FIFO"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return m.Type().String()
}

func (w *workload) mkfifo() bool {
	rel := w.freeName(w.pickDir(), "p")
	w.logf("mkfifo %s", rel)
	w.must(syscall.Mkfifo(w.abs(rel), 0o644))
	w.specials[rel] = "FIFO"
	return true
}

// mknodDevice makes /dev/null's twin (char 1:3), or a block device 7:0
// (loop0); without root, a FIFO.
func (w *workload) mknodDevice() bool {
	if os.Geteuid() != 0 {
		return w.mkfifo()
	}
	rel := w.freeName(w.pickDir(), "c")
	if w.rng.IntN(3) == 0 {
		w.logf("mknod %s b 7 0", rel)
		w.must(syscall.Mknod(w.abs(rel), syscall.S_IFBLK|0o600, 7<<8|0))
		w.specials[rel] = "block device"
		return true
	}
	w.logf("mknod %s c 1 3", rel)
	w.must(syscall.Mknod(w.abs(rel), syscall.S_IFCHR|0o666, 1<<8|3))
	w.specials[rel] = "character device"
	return true
}

func (w *workload) pickSpecial() (string, bool) {
	if len(w.specials) == 0 {
		return "", false
	}
	ks := sortedKeys(w.specials)
	return ks[w.rng.IntN(len(ks))], true
}

func (w *workload) removeSpecial() bool {
	rel, ok := w.pickSpecial()
	if !ok {
		return false
	}
	w.logf("rm %s (%s)", rel, w.specials[rel])
	w.must(os.Remove(w.abs(rel)))
	w.forget(rel)
	return true
}

func (w *workload) renameSpecial() bool {
	from, ok := w.pickSpecial()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "p")
	w.logf("rename %s -> %s (%s)", from, to, w.specials[from])
	w.rename(from, to)
	return true
}

// concurrentWriters has two goroutines, each with its own descriptor,
// write disjoint ranges of one file in small interleaved chunks (the
// second past the end, growing it): the object must hold both.
func (w *workload) concurrentWriters() bool {
	rel, ok := w.pickFile()
	if !ok || w.rng.IntN(3) == 0 {
		rel = w.freeName(w.pickDir(), "f")
		w.logf("create %s (empty) for two writers", rel)
		w.write(rel, nil)
	}
	old := w.files[rel]
	half := 4096 + w.rng.IntN(128<<10)
	a, b := w.content(half), w.content(half+w.rng.IntN(128<<10))
	w.logf("two writers on %s: [0,%d) and [%d,%d) (was %d bytes)", rel, len(a), len(a), len(a)+len(b), len(old))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, part := range [][]byte{a, b} {
		off := i * len(a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.OpenFile(w.abs(rel), os.O_WRONLY, 0)
			if err != nil {
				errs[i] = err
				return
			}
			for c := 0; c < len(part) && err == nil; c += 4096 {
				_, err = f.WriteAt(part[c:min(c+4096, len(part))], int64(off+c))
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	w.must(errs[0])
	w.must(errs[1])
	n := max(len(old), len(a)+len(b))
	got := make([]byte, n)
	copy(got, old)
	copy(got, a)
	copy(got[len(a):], b)
	w.setContent(rel, got)
	return true
}

// mmapWrite writes through a MAP_SHARED mapping (msync, munmap, close),
// sometimes after growing the file with ftruncate.
func (w *workload) mmapWrite() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	old := w.files[rel]
	n := len(old)
	if n == 0 || w.rng.IntN(3) == 0 {
		n += 1 + w.rng.IntN(64<<10)
	}
	patch := w.content(1 + w.rng.IntN(min(n, 32<<10)))
	off := w.rng.IntN(n - len(patch) + 1)
	w.logf("mmap write %d bytes at %d of %s (%d bytes, was %d)", len(patch), off, rel, n, len(old))
	f, err := os.OpenFile(w.abs(rel), os.O_RDWR, 0)
	w.must(err)
	defer f.Close()
	if n != len(old) {
		w.must(f.Truncate(int64(n)))
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	w.must(err)
	copy(mem[off:], patch)
	w.must(unix.Msync(mem, unix.MS_SYNC))
	w.must(syscall.Munmap(mem))
	w.must(f.Close())
	b := make([]byte, n)
	copy(b, old)
	copy(b[off:], patch)
	w.setContent(rel, b)
	return true
}

// hardLinkDiffs checks that the names the model says are one file are one
// inode in WORKDIR.
func (w *workload) hardLinkDiffs(workdir string) []string {
	var diffs []string
	first := map[int]string{}
	for _, k := range sortedKeys(w.ino) {
		g := w.ino[k]
		f, ok := first[g]
		if !ok {
			first[g] = k
			continue
		}
		a, err1 := os.Lstat(filepath.Join(workdir, f))
		b, err2 := os.Lstat(filepath.Join(workdir, k))
		if err1 == nil && err2 == nil && !os.SameFile(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s: not a hard link of %s in WORKDIR, the model says it is", k, f))
		}
	}
	return diffs
}

// skippedDiffs compares status's skipped list (the first 100 and a count)
// with the model's special files.
func (w *workload) skippedDiffs(m *mount) []string {
	out, err := exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	if err != nil {
		return []string{fmt.Sprintf("status --json: %v", err)}
	}
	var st struct {
		Skipped []struct{ Path, Kind string } `json:"skipped"`
		Count   int                           `json:"skipped_count"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return []string{fmt.Sprintf("status --json: %v", err)}
	}
	var diffs []string
	listed := map[string]string{}
	for _, s := range st.Skipped {
		listed[s.Path] = s.Kind
		if kind, ok := w.specials[s.Path]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: listed by status as skipped (%s), not a special file in the model", s.Path, s.Kind))
		} else if !strings.Contains(s.Kind, kind) {
			diffs = append(diffs, fmt.Sprintf("%s: listed by status as skipped %s, the model: %s", s.Path, s.Kind, kind))
		}
	}
	if st.Count != len(w.specials) {
		diffs = append(diffs, fmt.Sprintf("status counts %d skipped, the model has %d special files", st.Count, len(w.specials)))
	}
	if st.Count <= len(st.Skipped) {
		for _, rel := range sortedKeys(w.specials) {
			if _, ok := listed[rel]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: a %s status does not list as skipped", rel, w.specials[rel]))
			}
		}
	}
	return diffs
}

// specialOnly is the set of special files below root and of directories
// holding only such files (at any depth): the bucket has nothing of them,
// so a restore cannot give them back unless a marker was kept.
func specialOnly(root string) map[string]bool {
	out := map[string]bool{}
	var walk func(rel string) bool // true: rel holds only special files
	walk = func(rel string) bool {
		ents, err := os.ReadDir(filepath.Join(root, rel))
		if err != nil {
			return false
		}
		only := len(ents) > 0
		for _, e := range ents {
			r := filepath.ToSlash(filepath.Join(rel, e.Name()))
			switch {
			case e.IsDir():
				if walk(r) {
					out[r] = true
				} else {
					only = false
				}
			case e.Type()&(os.ModeNamedPipe|os.ModeDevice|os.ModeCharDevice|os.ModeSocket) != 0:
				out[r] = true
			default:
				only = false
			}
		}
		return only
	}
	walk("")
	return out
}
