package state

import (
	"context"
	"errors"
	"testing"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/journal"
)

// openTest opens a state in a new dir, closed when the test ends.
func openTest(t testing.TB) *State {
	t.Helper()
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Done ends a record and writes what the cache now says in one call: both
// or, for a record re-recorded meanwhile, the cache writes alone; a write
// the cache refuses leaves the record pending.
func TestDone(t *testing.T) {
	s := openTest(t)
	j, c := s.Journal(), s.Cache()
	pending := func(t *testing.T) []journal.Record {
		t.Helper()
		if err := j.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		var recs []journal.Record
		if err := j.Pending(func(r journal.Record) bool { recs = append(recs, r); return true }); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	cached := func(p string) bool {
		t.Helper()
		_, ok, err := c.Get(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if err := c.Put("old", cache.Entry{Size: 1}); err != nil {
		t.Fatal(err)
	}
	j.Renamed("old", "new", false)
	recs := pending(t) // new, then old's removal
	if len(recs) != 2 || recs[0].Path != "new" {
		t.Fatalf("pending %+v", recs)
	}
	if err := s.Done(recs[0], []cache.Write{{Path: "new", Entry: cache.Entry{Size: 1, ETag: "e"}}, {Path: "old", Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if got := pending(t); len(got) != 1 || got[0].Path != "old" || !cached("new") || cached("old") {
		t.Fatalf("after Done: pending %+v, cached new %v, old %v", got, cached("new"), cached("old"))
	}

	// Re-recorded while it was sent: the record stays, the cache says what
	// the remote holds all the same.
	stale := pending(t)[0]
	j.Changed("old")
	pending(t)
	if err := s.Done(stale, []cache.Write{{Path: "old", Entry: cache.Entry{Size: 2}}}); err != nil {
		t.Fatal(err)
	}
	if got := pending(t); len(got) != 1 || got[0].Path != "old" || !cached("old") {
		t.Fatalf("after a stale Done: pending %+v, cached old %v", got, cached("old"))
	}

	if err := s.Done(pending(t)[0], []cache.Write{{Path: "", Entry: cache.Entry{}}}); !errors.Is(err, cache.ErrBadPath) {
		t.Fatalf("Done with an empty path: %v, want ErrBadPath", err)
	}
	if got := pending(t); len(got) != 1 {
		t.Fatalf("a refused Done ended the record: pending %+v", got)
	}
}
