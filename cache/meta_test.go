package cache

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
)

// A chmod or chown made while nothing was journaling (unmounted) is found
// by Scan, for entries that record mode and owner; entries written before
// they were kept are not reported for lacking them.
func TestScanModeAndOwner(t *testing.T) {
	tests := []struct {
		name   string
		meta   bool // the entries record mode and owner
		change func(t *testing.T, root string)
		want   string
		root   bool
	}{
		{name: "unchanged", meta: true},
		{name: "chmod", meta: true, change: chmod("b", 0o755), want: "+b"},
		{name: "setuid", meta: true, change: chmod("a", 0o4644), want: "+a"},
		{name: "chown", meta: true, root: true, change: chown("d/c", 1234, 5678), want: "+d/c"},
		{name: "chgrp", meta: true, root: true, change: chown("d/c", -1, 5678), want: "+d/c"},
		{name: "chmod, entries without mode", change: chmod("b", 0o755)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				testenv.NeedRoot(t, "chown")
			}
			c := openTest(t)
			root := t.TempDir()
			testfs.Tree(t, root, map[string]string{"a": "1", "b": "2", "d/c": "3"})
			err := walkSorted(root, func(p string, info os.FileInfo) error {
				e := Entry{Size: info.Size(), Mtime: info.ModTime(), ETag: "e"}
				if tt.meta {
					e.Mode, e.UID, e.GID, e.Meta = OwnerOf(info)
				}
				return c.Put(p, e)
			})
			if err != nil {
				t.Fatal(err)
			}
			if tt.change != nil {
				tt.change(t, root)
			}
			var events []string
			err = c.Scan(root, nil,
				func(p string) { events = append(events, "+"+p) },
				func(p string) { events = append(events, "-"+p) })
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(events, " "); got != tt.want {
				t.Errorf("Scan events %q, want %q", got, tt.want)
			}
		})
	}
}

func chmod(rel string, mode uint32) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		// syscall's, since os.FileMode keeps setuid elsewhere.
		if err := syscall.Chmod(filepath.Join(root, rel), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func chown(rel string, uid, gid int) func(*testing.T, string) {
	return func(t *testing.T, root string) {
		if err := os.Chown(filepath.Join(root, rel), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}
