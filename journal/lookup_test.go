package journal

import (
	"errors"
	"testing"
)

// Has sees a change from the moment it is recorded until its record is
// done: queued, pending, failed; a rename's old name too.
func TestHas(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	has := func(p string) bool {
		t.Helper()
		ok, err := j.Has(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	j.Changed("queued")
	if !has("queued") {
		t.Errorf("a change not yet committed is not seen")
	}
	j.Renamed("old", "new", false)
	syncT(t, j)
	for _, p := range []string{"queued", "old", "new"} {
		if !has(p) {
			t.Errorf("pending %s is not seen", p)
		}
	}
	if has("other") || has("ne") {
		t.Errorf("a path never recorded is seen")
	}
	for _, r := range pending(t, j) {
		if r.Path == "queued" {
			if err := j.Fail(r, errors.New("x")); err != nil {
				t.Fatal(err)
			}
		} else if err := j.Done(r); err != nil {
			t.Fatal(err)
		}
	}
	if !has("queued") {
		t.Errorf("a failed change is not seen")
	}
	if has("old") || has("new") {
		t.Errorf("done records are still seen")
	}
}

// Covered: a path with a record of its own, or below a directory removed
// or renamed (either name), pending or failed; nothing else.
func TestCovered(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("a/f")
	j.Removed("gone", true)
	j.Renamed("old", "new", true)
	j.Changed("plain") // a file's record covers only itself
	j.Removed("bad", true)
	syncT(t, j)
	for _, r := range pending(t, j) {
		if r.Path == "bad" {
			if err := j.Fail(r, errors.New("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	j.Removed("queued", true) // not committed: not looked at
	paths := []string{"a/f", "a/g", "gone", "gone/x", "gone/y/z", "old/x", "new/x", "plain", "plain/x", "bad/x", "queued/x", "gon", "goner/x"}
	want := []bool{true, false, true, true, true, true, true, true, false, true, false, false, false}
	got, err := j.Covered(paths)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		if got[i] != want[i] {
			t.Errorf("Covered(%s) = %v, want %v", p, got[i], want[i])
		}
	}
}
