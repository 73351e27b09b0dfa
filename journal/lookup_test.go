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
