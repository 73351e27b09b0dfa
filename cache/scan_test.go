package cache

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
)

// walkSorted calls fn for each path the scan's walk yields, in key order,
// with its lstat; an error from fn stops the walk and is returned.
func walkSorted(root string, fn func(path string, info os.FileInfo) error) error {
	w, err := walkTree(root, nil, nil)
	if err != nil {
		return err
	}
	defer w.Close()
	for f, ok := w.Next(); ok; f, ok = w.Next() {
		if err := fn(f.Rel, f.Info); err != nil {
			return err
		}
	}
	return w.Err()
}

// A directory the scan cannot read fails the scan: taken as empty, its
// files would all be reported removed.
func TestScanUnreadableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads any directory: run this test again as nobody.
		testenv.RunAsNobody(t, "^TestScanUnreadableDir$")
		return
	}
	c := openTest(t)
	root := t.TempDir()
	testfs.Tree(t, root, map[string]string{"locked/f": "1", "g": "1"})
	if err := walkSorted(root, func(p string, info os.FileInfo) error {
		return c.Put(p, Entry{Size: info.Size(), Mtime: info.ModTime(), Kind: kindOf(info)})
	}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "locked"), 0)
	defer os.Chmod(filepath.Join(root, "locked"), 0o755)
	var removed []string
	err := c.Scan(root, nil, func(string) {}, func(p string) { removed = append(removed, p) })
	if err == nil {
		t.Errorf("unreadable directory passed over silently (removed %q); a scan would report its files deleted", removed)
	}
}
