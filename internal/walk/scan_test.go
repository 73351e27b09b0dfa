package walk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
)

// scanOptions are the options of the mount's start-up scan (cache.Scan):
// links at their own name, every name, special files passed over, and any
// other problem stops the walk.
func scanOptions(skip func(string) bool) Options {
	return Options{Links: StoreLinks, Skip: skip, AllNames: true, Eager: true, Warn: func(p string, err error) error {
		var se *SpecialError
		if errors.As(err, &se) {
			return nil
		}
		return err
	}}
}

// walkAll runs a walk to its end and returns the Rel of each entry, with
// the error that stopped it.
func walkAll(t *testing.T, root string, o Options) ([]string, error) {
	t.Helper()
	w, err := New(root, o)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	var got []string
	for f, ok := w.Next(); ok; f, ok = w.Next() {
		got = append(got, f.Rel)
	}
	return got, w.Err()
}

func TestWalkSortedOrder(t *testing.T) {
	root := t.TempDir()
	testfs.Tree(t, root, map[string]string{
		"a-b": "1", "a.b": "1", "a0": "1", "a b": "1", "a/x": "1", "a/y/z": "1", "a~": "1", "é": "1", "B": "1",
		"link":  "->a",    // symlink to a directory: yielded, not followed
		"pipe":  "<fifo>", // special files are not yielded
		"empty": "<dir>",  // yielded as its marker's key

		"skipme/":  "<dir>",
		"skipme/f": "1",
	})
	got, err := walkAll(t, root, scanOptions(func(p string) bool { return p == "skipme" }))
	if err != nil {
		t.Fatal(err)
	}
	want := "B,a b,a-b,a.b,a/x,a/y/z,a0,a~,empty/,link,é"
	if strings.Join(got, ",") != want {
		t.Errorf("WalkSorted order\n got %s\nwant %s", strings.Join(got, ","), want)
	}

	// A walk stopped early leaves nothing open and nothing to report.
	w, err := New(root, scanOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Next(); !ok {
		t.Error("no first entry")
	}
	w.Close()
	if err := w.Err(); err != nil {
		t.Errorf("stopped early: err %v", err)
	}
	if _, err := New(filepath.Join(root, "nope"), scanOptions(nil)); err == nil {
		t.Error("walking a missing root succeeded")
	}
}

func TestWalkSortedUnreadableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads any directory: run this test again as nobody.
		testenv.RunAsNobody(t, "^TestWalkSortedUnreadableDir$")
		return
	}
	root := t.TempDir()
	testfs.Tree(t, root, map[string]string{"locked/f": "1", "m": "1"})
	os.Chmod(filepath.Join(root, "locked"), 0)
	defer os.Chmod(filepath.Join(root, "locked"), 0o755)
	got, err := walkAll(t, root, scanOptions(nil))
	if err == nil || len(got) != 0 {
		t.Errorf("unreadable directory passed over silently (walked %q); a scan would report its files deleted", got)
	}
	// A walk that goes on past it (reconcile's) is told of it.
	var warned []string
	got, err = walkAll(t, root, syncOptions(StoreLinks, func(p string, err error) {
		warned = append(warned, filepath.Base(p))
	}))
	if err != nil || strings.Join(got, ",") != "m" || strings.Join(warned, ",") != "locked" {
		t.Errorf("walked %q (err %v), warned of %q; want m, and a warning about locked", got, err, warned)
	}
}

// What the scan and the walks of reconcile, verify and the drain yield
// differently, per option: a link's key (its own name, or its .rclonelink
// object's), s3sync's temporary files and names that are not UTF-8 (the
// journal would have recorded them; S3 cannot hold them), and so what
// counts as an empty directory. Eager stats change nothing of what is
// yielded.
func TestWalkOptions(t *testing.T) {
	root := t.TempDir()
	testfs.Tree(t, root, map[string]string{
		"l": "->x", "l-": "1",
		"tmp/" + TempPrefix + "1": "1", // empty but for a temporary file
		"fifo/p":                  "<fifo>",
		"sub/f":                   "1",
	})
	if err := os.WriteFile(filepath.Join(root, "sub", "bad\xff"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	scan := scanOptions(nil)
	lazy := scan
	lazy.Eager = false
	var warned []string
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"scan", scan, "fifo/ l l- sub/bad\xff sub/f tmp/" + TempPrefix + "1"},
		{"scan, not eager", lazy, "fifo/ l l- sub/bad\xff sub/f tmp/" + TempPrefix + "1"},
		{"sync", syncOptions(StoreLinks, func(p string, err error) { warned = append(warned, filepath.Base(p)) }),
			"fifo/ l- l sub/f tmp/"},
	} {
		got, err := walkAll(t, root, c.o)
		if err != nil {
			t.Fatal(err)
		}
		if key := strings.Join(got, " "); key != c.want {
			t.Errorf("%s: walked %q, want %q", c.name, key, c.want)
		}
	}
	if strings.Join(warned, ",") != "p,bad\xff" {
		t.Errorf("sync walk warned of %q, want the FIFO and the name that is not UTF-8", warned)
	}
}

// The scan keys a link by its own name, as a file: an entry that changed
// between a link and a file since the listing keeps its place in the
// order, and is yielded as what it is now (the walks of reconcile and the
// drain, where the two keys differ, pass it over: see
// TestWalkFileReplacedSinceListing).
func TestWalkScanKindChangedSinceListing(t *testing.T) {
	root := t.TempDir()
	testfs.Tree(t, root, map[string]string{"a": "1", "b": "->a", "c": "1"})
	w, err := New(root, scanOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	os.Remove(filepath.Join(root, "a"))
	os.Symlink("c", filepath.Join(root, "a"))
	os.Remove(filepath.Join(root, "b"))
	os.WriteFile(filepath.Join(root, "b"), []byte("file"), 0o644)
	var got []string
	for f, ok := w.Next(); ok; f, ok = w.Next() {
		kind := "file"
		if f.Link {
			kind = "link"
		}
		got = append(got, f.Rel+":"+kind)
	}
	if g := strings.Join(got, " "); g != "a:link b:file c:file" {
		t.Errorf("walked %q, want a as a link and b as a file", g)
	}
}
