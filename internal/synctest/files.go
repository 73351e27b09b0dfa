package synctest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/testfs"
)

// ReadTree returns the regular files below root, by slash-separated path
// relative to root, with their contents.
func ReadTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(root, p)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return out
}

// ReadFile returns path's contents, or fails t.
func ReadFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// IsDir reports whether p is a directory (following links).
func IsDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// Mkdirs makes the directories dirs below root, or fails t.
func Mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// OutsideDir is a folder outside every tree under test holding a secret,
// the thing a followed link would upload.
func OutsideDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/id_rsa", "SECRET KEY")
	return dir
}

// Lmtime is path's modification time, not following a link, or fails t.
func Lmtime(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

// Keys lists a bucket's keys (as s3test.Server.Objects gives them), sorted.
func Keys(objs map[string]int64) []string {
	var out []string
	for k := range objs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// MarkerKeys lists a bucket's keys under prefix, sorted, without the
// prefix, space-separated.
func MarkerKeys(objs map[string]int64, prefix string) string {
	var out []string
	for k := range objs {
		out = append(out, strings.TrimPrefix(k, prefix))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// Must fails t if err is not nil.
func Must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
