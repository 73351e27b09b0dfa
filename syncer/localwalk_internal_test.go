package syncer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A file listed by the walk and replaced by a symlink or a folder before
// the walk reaches it was replaced since the listing, as a folder or a link
// replaced so is: its own change tells (the mount journals it), not a
// warning. The chaos test found this: a directory renamed through the mount
// is synced by walking it, and a file in it replaced by a link meanwhile
// put the whole directory in the failed list ("symlink is not a regular
// file"). A special file still warns.
func TestWalkFileReplacedSinceListing(t *testing.T) {
	for _, c := range []struct {
		name    string
		replace func(path string) error
	}{
		{"by a symlink", func(p string) error { return os.Symlink("elsewhere", p) }},
		{"by a folder", func(p string) error { return os.Mkdir(p, 0o755) }},
	} {
		for _, mode := range []symlinkMode{storeLinks, followLinks, skipLinks} {
			t.Run(fmt.Sprintf("%s/mode=%d", c.name, mode), func(t *testing.T) {
				root := t.TempDir()
				for _, n := range []string{"a", "b", "c"} {
					if err := os.WriteFile(filepath.Join(root, n), []byte(n), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
				var warnings []string
				w, err := newWalk(root, walkOptions{symlinks: mode}, func(p string, err error) {
					warnings = append(warnings, filepath.Base(p)+": "+err.Error())
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(root, "b")); err != nil {
					t.Fatal(err)
				}
				if err := c.replace(filepath.Join(root, "b")); err != nil {
					t.Fatal(err)
				}
				var got []string
				for f, ok := w.Next(); ok; f, ok = w.Next() {
					got = append(got, f.Rel)
				}
				if strings.Join(got, " ") != "a c" {
					t.Errorf("mode %d: walked %q, want a and c", mode, got)
				}
				if want := "fifo: named pipe (FIFO) is not a regular file"; strings.Join(warnings, "\n") != want {
					t.Errorf("mode %d: warnings %q, want only %q", mode, warnings, want)
				}
			})
		}
	}
}
