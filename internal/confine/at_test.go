package confine

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAt: At resolves a name's parent below the root, refusing a parent
// that is a link (ELOOP) or a file (ENOTDIR), and its calls act on the
// name itself, never through a link there.
func TestAt(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "d/f"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(outside, "f"), []byte("outside"), 0o644))
	must(os.Symlink(outside, filepath.Join(dir, "link")))
	must(os.Symlink(filepath.Join(outside, "f"), filepath.Join(dir, "d/flink")))
	r, err := Open(dir)
	must(err)
	defer r.Close()

	// A link on the way gives ELOOP; a parent that is itself a link is
	// opened as the link (O_NOFOLLOW), no directory: ENOTDIR, as a file
	// there gives.
	for rel, want := range map[string]error{"link/f": syscall.ENOTDIR, "link/d/f": syscall.ELOOP, "d/f/x": syscall.ENOTDIR, "../x": syscall.EINVAL, "d/../d/f": syscall.EINVAL} {
		if _, err := r.At(rel); err != want {
			t.Errorf("At(%q): %v, want %v", rel, err, want)
		}
	}
	a, err := r.At("d/flink")
	must(err)
	defer a.Close()
	if err := a.Chmod(0o600); err != syscall.EOPNOTSUPP {
		t.Errorf("Chmod of a link: %v, want EOPNOTSUPP", err)
	}
	if err := a.Truncate(0); err != syscall.EINVAL {
		t.Errorf("Truncate of a link: %v, want EINVAL", err)
	}
	var st syscall.Stat_t
	must(a.Lstat(&st))
	if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		t.Errorf("Lstat of a link: mode %o", st.Mode)
	}
	if fi, err := os.Stat(filepath.Join(outside, "f")); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != 7 {
		t.Errorf("the link's target changed: %v %v", fi, err)
	}
	f, err := r.At("d/f")
	must(err)
	defer f.Close()
	must(f.Chmod(0o640))
	must(f.Truncate(0))
	if fi, err := os.Stat(filepath.Join(dir, "d/f")); err != nil || fi.Mode().Perm() != 0o640 || fi.Size() != 0 {
		t.Errorf("chmod 640 and truncate 0 of d/f gave %v %v", fi, err)
	}
	top, err := r.At("d")
	must(err)
	if top.Dir != r.Fd() || top.Name != "d" {
		t.Errorf("At of a name at the top: %+v, want the root's fd", top)
	}
	top.Close()
	var rst syscall.Stat_t
	must(syscall.Fstat(r.Fd(), &rst))
}

// The cost of confinement per operation on WORKDIR: an lstat of a file one
// directory down by its full path (what the mount did) against resolving
// its parent below the root and fstatat of the name (what it does).
func benchTree(b *testing.B) (string, []string) {
	dir := b.TempDir()
	var rels []string
	for d := range 10 {
		for f := range 100 {
			rel := fmt.Sprintf("d%02d/f%03d", d, f)
			if f == 0 {
				os.Mkdir(filepath.Join(dir, fmt.Sprintf("d%02d", d)), 0o755)
			}
			os.WriteFile(filepath.Join(dir, rel), nil, 0o644)
			rels = append(rels, rel)
		}
	}
	return dir, rels
}

func BenchmarkLstatPath(b *testing.B) {
	dir, rels := benchTree(b)
	var st syscall.Stat_t
	i := 0
	for b.Loop() {
		if err := syscall.Lstat(filepath.Join(dir, rels[i%len(rels)]), &st); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkAtLstat(b *testing.B) {
	dir, rels := benchTree(b)
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var st syscall.Stat_t
	i := 0
	for b.Loop() {
		a, err := r.At(rels[i%len(rels)])
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Lstat(&st); err != nil {
			b.Fatal(err)
		}
		a.Close()
		i++
	}
}
