// Package testfs holds file helpers shared by the tests of several packages.
package testfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// WriteFile writes body to path, making its parent directories, or fails
// the test.
func WriteFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Tree creates files (content is the map value) under root; a value
// starting with "->" makes a symlink, "<fifo>" a FIFO, "<dir>" a directory.
// Regular files get one fixed mtime.
func Tree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	mtime := time.Unix(1700000000, 123456789)
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(content[2:], p)
		case content == "<fifo>":
			err = syscall.Mkfifo(p, 0o644)
		case content == "<dir>":
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
			if err == nil {
				err = os.Chtimes(p, mtime, mtime)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
