package confine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// setup makes a root with a sentinel directory outside it, and links in
// the root that lead there, to a file there, and to a place inside.
func setup(t *testing.T) (*Root, string, string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	out := filepath.Join(base, "outside")
	for _, d := range []string{root, out, filepath.Join(root, "in")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"out": out, "outfile": filepath.Join(out, "secret"), "inlink": "in", "up": "../outside"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, root, out
}

// outsideUnchanged fails t if anything in out is not as setup left it.
func outsideUnchanged(t *testing.T, out string) {
	t.Helper()
	es, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Name() != "secret" {
		t.Fatalf("outside holds %v, want only secret", es)
	}
	st, err := os.Lstat(filepath.Join(out, "secret"))
	if err != nil || st.Mode() != 0o600 || st.Size() != 1 {
		t.Fatalf("outside/secret changed: %v %v", st, err)
	}
}

// Every operation refuses to pass through a link, whether it leads
// outside or to a place inside, and never follows a final link.
func TestNothingThroughLinks(t *testing.T) {
	r, _, out := setup(t)
	f := func() (*os.File, error) { return r.OpenFile("x", os.O_WRONLY|os.O_CREATE, 0o644) }
	tmp, _ := f()
	defer tmp.Close()
	ops := map[string]func(p string) error{
		"create": func(p string) error {
			f, err := r.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			f.Close()
			return err
		},
		"mkdir":    func(p string) error { return r.Mkdir(p, 0o777) },
		"mkdirall": func(p string) error { return r.MkdirAll(p+"/a/b", 0o777) },
		"symlink":  func(p string) error { return r.Symlink("/etc", p) },
		"remove":   func(p string) error { return r.Remove(p) },
		"chmod":    func(p string) error { return r.Chmod(p, 0o777) },
		"chtimes":  func(p string) error { return r.Chtimes(p, time.Unix(0, 0), time.Unix(0, 0)) },
		"lchown":   func(p string) error { return r.Lchown(p, 65534, 65534) },
		"rename":   func(p string) error { return r.Rename("x", p, 0) },
		"link":     func(p string) error { return r.Link(tmp, p) },
		"temp": func(p string) error {
			f, _, err := r.CreateTemp(p, 0o644, func() string { return "t" })
			f.Close()
			return err
		},
	}
	for name, op := range ops {
		for _, p := range []string{"out/secret", "out/new", "up/secret", "inlink/new"} {
			if name == "temp" {
				p = strings.TrimSuffix(p, "/secret")
			}
			if err := op(p); err == nil {
				t.Errorf("%s %s: no error", name, p)
			} else if !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.EXDEV) {
				t.Errorf("%s %s: %v, want ELOOP or ENOTDIR", name, p, err)
			}
		}
	}
	// Final links: chmod and create refuse; the rest act on the link.
	if err := r.Chmod("outfile", 0o777); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("chmod of a link: %v", err)
	}
	if f, err := r.OpenFile("outfile", os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		f.Close()
		t.Error("open of a link to outside succeeded")
	}
	if err := r.Chtimes("outfile", time.Unix(5, 0), time.Unix(5, 0)); err != nil {
		t.Errorf("chtimes of the link itself: %v", err)
	}
	if err := r.Remove("outfile"); err != nil {
		t.Errorf("remove of the link itself: %v", err)
	}
	if _, err := r.Lstat("out/secret"); !errors.Is(err, syscall.ELOOP) && !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("lstat through a link: %v", err)
	}
	outsideUnchanged(t, out)
}

func TestOperationsBelow(t *testing.T) {
	r, root, out := setup(t)
	if err := r.MkdirAll("a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	f, tmp, err := r.CreateTemp("a/b", 0o644, func() string { return ".t" })
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello")
	if tmp == "" {
		err = r.Link(f, "a/b/f")
	} else {
		err = r.Rename(tmp, "a/b/f", 0)
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "a/b/f")); string(b) != "hello" {
		t.Fatalf("a/b/f holds %q", b)
	}
	if err := r.Rename("a/b/f", "a/g", 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Chmod("a/g", 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1_000_000_000, 5)
	if err := r.Chtimes("a/g", mt, mt); err != nil {
		t.Fatal(err)
	}
	st, err := r.Lstat("a/g")
	if err != nil || st.Mode() != 0o600 || !st.ModTime().Equal(mt) {
		t.Fatalf("a/g: %v %v", st, err)
	}
	if err := r.Symlink("/etc/passwd", "a/l"); err != nil {
		t.Fatal(err)
	}
	if tg, err := r.Readlink("a/l"); err != nil || tg != "/etc/passwd" {
		t.Fatalf("readlink: %q %v", tg, err)
	}
	for _, p := range []string{"a/l", "a/g", "a/b/c", "a/b"} {
		if err := r.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.RemoveDir("a"); err != nil {
		t.Fatal(err)
	}
	if err := r.Mkdir("../x", 0o755); !errors.Is(err, ErrOutside) {
		t.Fatalf("mkdir ../x: %v", err)
	}
	outsideUnchanged(t, out)
}

// A directory swapped for a link between two operations: the second
// one fails instead of acting through the link.
func TestSwappedDirectory(t *testing.T) {
	r, root, out := setup(t)
	if err := r.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, "d.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(out, filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("d/e", 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("mkdirall through a swapped dir: %v", err)
	}
	if f, err := r.OpenFile("d/secret", os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		f.Close()
		t.Fatal("opened through a swapped dir")
	}
	outsideUnchanged(t, out)
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		rel string
		ok  bool
	}{
		{"a", true}, {"a/b", true}, {"a..b", true}, {"...", true}, {".a", true},
		{"", false}, {"/a", false}, {"a/", false}, {"a//b", false}, {".", false}, {"..", false},
		{"a/../b", false}, {"../a", false}, {"a/..", false}, {"a/./b", false}, {"a\x00b", false},
	} {
		if err := Check(c.rel); (err == nil) != c.ok {
			t.Errorf("Check(%q) = %v, want ok %v", c.rel, err, c.ok)
		}
	}
}

// FuzzCheck: whatever Check accepts, joined to a root, stays strictly
// below it, and the kernel's RESOLVE_BENEATH agrees (creating the path in
// a fresh root never touches the root's parent).
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a", "a/b", "..", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.", "a\x00", "\u2025/x", "a/b/../c"} {
		f.Add(s)
	}
	base := f.TempDir()
	root := filepath.Join(base, "r")
	os.Mkdir(root, 0o755)
	r, err := Open(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		if Check(rel) != nil {
			return
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		if !strings.HasPrefix(p, root+"/") {
			t.Fatalf("Check accepted %q, which joins to %s", rel, p)
		}
		if len(rel) > 200 || strings.Count(rel, "/") > 8 {
			return
		}
		if err := r.MkdirAll(rel, 0o755); err != nil && !errors.Is(err, syscall.ENAMETOOLONG) && !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("MkdirAll(%q): %v", rel, err)
		}
		es, _ := os.ReadDir(base)
		if len(es) != 1 {
			t.Fatalf("MkdirAll(%q) made something beside the root: %v", rel, es)
		}
	})
}

func FuzzCheckLinkTarget(f *testing.F) {
	for _, s := range []string{"/etc", "../x", "", "a\x00b", strings.Repeat("a", 5000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		err := CheckLinkTarget(target)
		bad := target == "" || strings.ContainsRune(target, 0) || len(target) >= 4096
		if (err != nil) != bad {
			t.Fatalf("CheckLinkTarget(%q) = %v", target, err)
		}
	})
}
