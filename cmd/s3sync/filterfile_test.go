package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

func TestCLIExcludeFrom(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.log", "c.tmp", "#d", "keep.log", "sub/e.txt", "sub/f.bin"} {
		testfs.WriteFile(t, filepath.Join(dir, f), f)
	}
	patterns := filepath.Join(t.TempDir(), "excludes")
	os.WriteFile(patterns, []byte("# build output\n*.log\n\n  *.tmp  \n; rsync-style comment\r\nsub/*.bin\n"), 0o644)

	// The file's patterns take its place among --exclude and --include:
	// keep.log is included by the later --include, and "#d" is a file
	// name, not a comment, when it comes from the command line.
	b := srv.NewBucket(t)
	r := s3sync(t, "reconcile", ep, "--exclude-from", patterns, "--include", "keep.log", dir, "s3://"+b+"/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"upload: "+dir+"/#d to s3://"+b+"/#d",
		"upload: "+dir+"/a.txt to s3://"+b+"/a.txt",
		"upload: "+dir+"/keep.log to s3://"+b+"/keep.log",
		"upload: "+dir+"/sub/e.txt to s3://"+b+"/sub/e.txt")

	// Before --include, the file's "*.log" would win; after it, it does.
	b2 := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, "--include", "keep.log", "--exclude-from", patterns, dir, "s3://"+b2+"/")
	wantCode(t, r, 0)
	if got := srv.Objects(t, b2, ""); len(got) != 3 {
		t.Fatalf("--include then --exclude-from: uploaded %v, want #d, a.txt, sub/e.txt", got)
	}

	// --include-from after --exclude '*' uploads only what it lists.
	includes := filepath.Join(t.TempDir(), "includes")
	os.WriteFile(includes, []byte("sub/*\n"), 0o644)
	b3 := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, "--exclude", "*", "--include-from", includes, dir, "s3://"+b3+"/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"upload: "+dir+"/sub/e.txt to s3://"+b3+"/sub/e.txt",
		"upload: "+dir+"/sub/f.bin to s3://"+b3+"/sub/f.bin")

	// A file that cannot be read is one line and a usage error, before
	// anything is sent.
	b4 := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, "--exclude-from", filepath.Join(dir, "missing"), dir, "s3://"+b4+"/")
	wantCode(t, r, 2)
	wantOneErrLine(t, r, "--exclude-from", "missing", "no such file")
	if got := srv.Objects(t, b4, ""); len(got) != 0 {
		t.Fatalf("a bad --exclude-from still uploaded %v", got)
	}
}

func TestReadPatterns(t *testing.T) {
	got, err := readPatterns(strings.NewReader("a\n\n#c\n;d\n  e f \n\tg\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a", "e f", "g"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
