package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// workload makes random changes through the mount and keeps a model of the
// tree they should leave, to cross-check WORKDIR.
type workload struct {
	t     *testing.T
	rng   *rand.Rand
	mp    string
	files map[string][]byte // rel path -> content
	dirs  map[string]bool   // rel path of every directory made
	log   []string
	op    int

	modes map[string]os.FileMode // permission bits of each file in files
	links map[string]string      // rel path of each symlink -> its target
	// newMode is what a file created with 0644 gets (the umask applies).
	newMode os.FileMode
	// outside is a folder outside WORKDIR holding a secret, for links to
	// point at: nothing of it may reach the bucket.
	outside string

	// ino groups the names of one file or symlink (hard links): names with
	// the same number share content and mode (chaos_ops_test.go).
	ino     map[string]int
	nextIno int
	// specials are FIFOs and device nodes (rel path -> kind): absent from
	// the bucket, listed by status as skipped.
	specials map[string]string
}

func newWorkload(t *testing.T, seed uint64, mountpoint string) *workload {
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "id_rsa"), []byte("SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &workload{t: t, rng: rand.New(rand.NewPCG(seed, 0xc4a05)), mp: mountpoint,
		files: map[string][]byte{}, dirs: map[string]bool{},
		modes: map[string]os.FileMode{}, links: map[string]string{},
		ino: map[string]int{}, specials: map[string]string{},
		newMode: 0o644 &^ os.FileMode(umask), outside: outside}
}

func (w *workload) logf(format string, args ...any) {
	w.log = append(w.log, time.Now().Format("15:04:05.000")+fmt.Sprintf(" %3d ", w.op)+fmt.Sprintf(format, args...))
}

func (w *workload) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("workload op %d: %v\nworkload so far:\n  %s", w.op, err, strings.Join(w.log, "\n  "))
	}
}

func (w *workload) abs(rel string) string { return filepath.Join(w.mp, filepath.FromSlash(rel)) }

// content is n random bytes, with a readable head naming the op.
func (w *workload) content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + w.rng.IntN(26))
	}
	copy(b, fmt.Sprintf("op%d ", w.op))
	return b
}

func (w *workload) size() int {
	switch r := w.rng.IntN(100); {
	case r < 10:
		return 0
	case r < 80:
		return 1 + w.rng.IntN(16<<10)
	default:
		return 64<<10 + w.rng.IntN(1<<20) // big enough to be read while held
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (w *workload) pickFile() (string, bool) {
	if len(w.files) == 0 {
		return "", false
	}
	ks := sortedKeys(w.files)
	return ks[w.rng.IntN(len(ks))], true
}

// pickDir is "" (the root) or a directory.
func (w *workload) pickDir() string {
	ks := append([]string{""}, sortedKeys(w.dirs)...)
	return ks[w.rng.IntN(len(ks))]
}

func (w *workload) taken(rel string) bool {
	_, f := w.files[rel]
	_, l := w.links[rel]
	_, s := w.specials[rel]
	return f || l || s || w.dirs[rel]
}

// freeName is a name not in use in dir, starting with prefix ("f" files,
// "d" directories, so the two never collide in the model by accident).
func (w *workload) freeName(dir, prefix string) string {
	for i := 0; ; i++ { // a small pool, so names are reused; it grows if full
		name := path.Join(dir, fmt.Sprintf("%s%d", prefix, w.rng.IntN(40+i)))
		if !w.taken(name) {
			return name
		}
	}
}

// write writes b to rel, a file or a new name (never a link: that would
// write through it); a file keeps its mode, a new one gets newMode.
func (w *workload) write(rel string, b []byte) {
	w.must(os.WriteFile(w.abs(rel), b, 0o644))
	if _, ok := w.files[rel]; !ok {
		w.modes[rel] = w.newMode
	}
	w.setContent(rel, b)
}

// forget drops a file or link from the model.
func (w *workload) forget(rel string) {
	delete(w.files, rel)
	delete(w.modes, rel)
	delete(w.links, rel)
	delete(w.ino, rel)
	delete(w.specials, rel)
}

func (w *workload) rename(from, to string) {
	w.must(os.Rename(w.abs(from), w.abs(to)))
	g, linked := w.ino[from]
	if linked && w.ino[to] == g {
		return // two names of one file: rename(2) does nothing
	}
	if b, ok := w.files[from]; ok {
		m := w.modes[from]
		w.forget(from)
		w.forget(to)
		w.files[to], w.modes[to] = b, m
		if linked {
			w.ino[to] = g
		}
		return
	}
	if target, ok := w.links[from]; ok {
		w.forget(from)
		w.forget(to)
		w.links[to] = target
		if linked {
			w.ino[to] = g
		}
		return
	}
	if kind, ok := w.specials[from]; ok {
		w.forget(from)
		w.forget(to)
		w.specials[to] = kind
		return
	}
	w.moveNames(from, to)
	for _, k := range sortedKeys(w.files) {
		if strings.HasPrefix(k, from+"/") {
			nk := to + strings.TrimPrefix(k, from)
			w.files[nk], w.modes[nk] = w.files[k], w.modes[k]
			delete(w.files, k)
			delete(w.modes, k)
		}
	}
	for _, k := range sortedKeys(w.links) {
		if strings.HasPrefix(k, from+"/") {
			w.links[to+strings.TrimPrefix(k, from)] = w.links[k]
			delete(w.links, k)
		}
	}
	for _, k := range sortedKeys(w.dirs) {
		if k == from || strings.HasPrefix(k, from+"/") {
			w.dirs[to+strings.TrimPrefix(k, from)] = true
			delete(w.dirs, k)
		}
	}
}

// entries is how many files, links and directories dir holds directly.
func (w *workload) entries(dir string) int {
	n := 0
	for _, k := range append(append(append(sortedKeys(w.files), sortedKeys(w.links)...), sortedKeys(w.dirs)...), sortedKeys(w.specials)...) {
		if path.Dir(k) == dir {
			n++
		}
	}
	return n
}

// modelDiffs cross-checks WORKDIR against the model: a difference here is
// a bug of the mount's file system (or of this test), not of the sync.
func (w *workload) modelDiffs(workdir string) []string {
	var diffs []string
	seen := map[string]bool{}
	filepath.Walk(workdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == workdir {
			return nil
		}
		rel, _ := filepath.Rel(workdir, p)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		switch {
		case info.IsDir():
			if !w.dirs[rel] {
				diffs = append(diffs, fmt.Sprintf("%s/: a directory in WORKDIR but not in the test's model", rel))
			}
		case info.Mode()&os.ModeSymlink != 0:
			want, ok := w.links[rel]
			if got, _ := os.Readlink(p); !ok || got != want {
				diffs = append(diffs, fmt.Sprintf("%s: WORKDIR has a link to %q, the model %q (in it: %v)", rel, got, want, ok))
			}
		case info.Mode().IsRegular():
			want, ok := w.files[rel]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: in WORKDIR but not in the test's model", rel))
				return nil
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
				diffs = append(diffs, fmt.Sprintf("%s: WORKDIR has %d bytes, the model %d (or other content)", rel, len(got), len(want)))
			}
			if got := info.Mode().Perm(); got != w.modes[rel] {
				diffs = append(diffs, fmt.Sprintf("%s: WORKDIR has mode %04o, the model %04o", rel, got, w.modes[rel]))
			}
		default:
			if kind, ok := w.specials[rel]; !ok || kind != specialKind(info.Mode()) {
				diffs = append(diffs, fmt.Sprintf("%s: a %v in WORKDIR, the model: %q", rel, info.Mode().Type(), kind))
			}
		}
		return nil
	})
	diffs = append(diffs, w.hardLinkDiffs(workdir)...)
	for _, rel := range append(append(append(sortedKeys(w.files), sortedKeys(w.links)...), sortedKeys(w.dirs)...), sortedKeys(w.specials)...) {
		if !seen[rel] {
			diffs = append(diffs, fmt.Sprintf("%s: in the model but not in WORKDIR", rel))
		}
	}
	return diffs
}
