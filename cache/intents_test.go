package cache

import (
	"slices"
	"testing"

	"go.etcd.io/bbolt"
)

// An intent lasts until the cache learns its path's outcome, whichever way
// that is written, and only for that path.
func TestIntentSettledByItsEntry(t *testing.T) {
	c := openTest(t)
	has := func(p string) bool {
		t.Helper()
		ok, err := c.HasIntent(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	all := func() []string {
		t.Helper()
		var out []string
		if err := c.Intents(func(p string) error { out = append(out, p); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if has("a/") || len(all()) != 0 {
		t.Fatal("a new cache has intents")
	}
	for _, p := range []string{"a/", "b/", "c/", "d/", "e/"} {
		if err := c.PutIntent(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := all(); !slices.Equal(got, []string{"a/", "b/", "c/", "d/", "e/"}) {
		t.Fatalf("intents %v", got)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Put("a/", Entry{Kind: KindDir, ETag: "x"}))
	must(c.Delete("b/"))
	must(c.db.Update(func(tx *bbolt.Tx) error {
		return c.ApplyTx(tx, []Write{{Path: "c/", Entry: Entry{Kind: KindDir, ETag: "y"}}})
	}))
	must(c.db.Update(func(tx *bbolt.Tx) error { return c.ApplyTx(tx, []Write{{Path: "d/", Delete: true}}) }))
	// Another path's entry settles nothing.
	must(c.Put("e", Entry{Size: 1, ETag: "z"}))
	if got := all(); !slices.Equal(got, []string{"e/"}) {
		t.Errorf("after the entries were written: intents %v, want [e/]", got)
	}
	must(c.DeleteIntent("e/"))
	if has("e/") {
		t.Error("DeleteIntent left the intent")
	}

	// A link's intent is its key; only a link's entry settles it.
	must(c.PutIntent("l" + LinkSuffix))
	must(c.Put("l", Entry{Size: 1, ETag: "file"}))
	must(c.Delete("l"))
	if !has("l" + LinkSuffix) {
		t.Error("a file's entry (or its deletion) settled the link's intent")
	}
	must(c.Put("l", Entry{Kind: KindLink, ETag: "link"}))
	if has("l" + LinkSuffix) {
		t.Error("the link's entry left its intent")
	}

	must(c.PutIntent("f/"))
	if _, err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if has("f/") {
		t.Error("Reset kept an intent of the old folder")
	}
}
