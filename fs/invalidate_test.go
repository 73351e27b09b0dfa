package fs

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"
)

// IsOpen: a file counts as open while any handle on it is, read-only too.
func TestIsOpen(t *testing.T) {
	tm := newMount(t, Options{})
	mt := &Mounted{m: tm.m}
	must(t, os.Mkdir(tm.path("d"), 0o755))
	must(t, os.WriteFile(tm.path("d/f"), []byte("x"), 0o644))
	tm.quiesce(t)
	if mt.IsOpen("d/f") {
		t.Fatalf("d/f open before anyone opened it")
	}
	r, err := os.Open(tm.path("d/f"))
	must(t, err)
	if !mt.IsOpen("d/f") || mt.IsOpen("d") || mt.IsOpen("none/f") {
		t.Errorf("IsOpen: d/f %v, d %v, none/f %v; want only d/f", mt.IsOpen("d/f"), mt.IsOpen("d"), mt.IsOpen("none/f"))
	}
	must(t, r.Close())
	poll(t, 60*time.Second, "the read-only handle released", func() bool { return !mt.IsOpen("d/f") })
}

// Invalidate: after a file was replaced, removed or made in WORKDIR behind
// the mount's back, the next look through the mount sees it, even with
// the kernel allowed to cache entries and attributes for an hour.
func TestInvalidate(t *testing.T) {
	tm := newMount(t, Options{EntryTimeout: time.Hour, AttrTimeout: time.Hour})
	mt := &Mounted{m: tm.m}
	must(t, os.WriteFile(tm.orig("f"), []byte("v1"), 0o644))
	must(t, os.WriteFile(tm.orig("gone"), []byte("x"), 0o644))
	for _, p := range []string{"f", "gone"} {
		if _, err := os.ReadFile(tm.path(p)); err != nil {
			t.Fatal(err)
		}
		// The read made the kernel's atime stale: fetched again here,
		// the attributes are then cached.
		if _, err := os.Stat(tm.path(p)); err != nil {
			t.Fatal(err)
		}
	}
	// Replaced (a download renamed into place), removed, and made in a new
	// folder.
	must(t, os.WriteFile(tm.orig("f.new"), []byte("version 2, longer"), 0o644))
	must(t, os.Rename(tm.orig("f.new"), tm.orig("f")))
	must(t, os.Remove(tm.orig("gone")))
	if _, err := os.Stat(tm.path("gone")); err != nil {
		t.Fatalf("the kernel did not cache the removed file's entry (%v): this test proves nothing", err)
	}
	must(t, os.MkdirAll(tm.orig("new/dir"), 0o755))
	must(t, os.WriteFile(tm.orig("new/dir/g"), []byte("g"), 0o644))

	mt.Invalidate("f")
	mt.Invalidate("gone")
	mt.Invalidate("new/dir/g")
	if b, err := os.ReadFile(tm.path("f")); err != nil || string(b) != "version 2, longer" {
		t.Errorf("f through the mount: %q %v, want the replacement", b, err)
	}
	if _, err := os.Stat(tm.path("gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("removed file through the mount: %v, want not found", err)
	}
	if b, err := os.ReadFile(tm.path("new/dir/g")); err != nil || string(b) != "g" {
		t.Errorf("new file through the mount: %q %v", b, err)
	}
	tm.quiesce(t)
}
