package journal

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"go.etcd.io/bbolt"
)

func TestDoneDuringPending(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	for i := range 2*pendingChunk + 10 {
		j.Changed(fmt.Sprintf("f%d", i))
	}
	syncT(t, j)
	n := 0
	err := j.Pending(func(r Record) bool {
		n++
		if err := j.Done(r); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*pendingChunk+10 {
		t.Errorf("visited %d records", n)
	}
	if left := pending(t, j); len(left) != 0 {
		t.Errorf("%d records left after Done", len(left))
	}
}

func TestDoneStaleSeq(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("a")
	syncT(t, j)
	old := pending(t, j)[0]
	j.Changed("a") // re-dirtied while the syncer uploads old
	syncT(t, j)
	for name, f := range map[string]func(Record) error{
		"Done":  j.Done,
		"Retry": func(r Record) error { return j.Retry(r, errors.New("x")) },
		"Fail":  func(r Record) error { return j.Fail(r, errors.New("x")) },
	} {
		if err := f(old); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := pending(t, j)
		if len(got) != 1 || got[0].Seq <= old.Seq || got[0].Attempts != 0 {
			t.Fatalf("after stale %s: pending = %+v", name, got)
		}
	}
	if failed, _ := j.Failed(); len(failed) != 0 {
		t.Errorf("stale Fail moved record: %+v", failed)
	}
	if err := j.Done(pending(t, j)[0]); err != nil {
		t.Fatal(err)
	}
	if got := pending(t, j); len(got) != 0 {
		t.Errorf("current Done left %+v", got)
	}
	if err := j.Done(old); err != nil { // nothing pending: no-op
		t.Errorf("Done of absent record: %v", err)
	}
}

func TestRetryKeepsPlace(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("a")
	j.Changed("b")
	syncT(t, j)
	a := pending(t, j)[0]
	for range 3 {
		if err := j.Retry(a, errors.New("connection refused")); err != nil {
			t.Fatal(err)
		}
	}
	got := pending(t, j)
	if got[0].Path != "a" || got[0].Seq != a.Seq || got[0].Attempts != 3 || got[0].Err != "connection refused" || got[0].ErrTime.IsZero() {
		t.Errorf("after Retry: %+v", got[0])
	}
	j.Changed("a")
	syncT(t, j)
	got = pending(t, j)
	if got[1].Path != "a" || got[1].Attempts != 0 || got[1].Err != "" {
		t.Errorf("new change should start fresh: %+v", got[1])
	}
}

func TestFailedRoundTrip(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("bad")
	j.Changed("good")
	syncT(t, j)
	recs := pending(t, j)
	if err := j.Fail(recs[0], errors.New("403 AccessDenied")); err != nil {
		t.Fatal(err)
	}
	failed, err := j.Failed()
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].Path != "bad" || failed[0].Err != "403 AccessDenied" || failed[0].ErrTime.IsZero() || failed[0].Attempts != 1 {
		t.Fatalf("failed = %+v", failed)
	}
	st, err := j.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Failed != 1 || !st.Oldest.Equal(recs[1].First) {
		t.Errorf("stats = %+v", st)
	}
	if got := pendingPaths(t, j); fmt.Sprint(got) != "[good]" {
		t.Errorf("pending = %v", got)
	}

	n, err := j.RetryFailed()
	if err != nil || n != 1 {
		t.Fatalf("RetryFailed = %d, %v", n, err)
	}
	got := pending(t, j)
	if len(got) != 2 || got[1].Path != "bad" || got[1].Seq <= recs[1].Seq || got[1].Attempts != 0 || !got[1].First.Equal(recs[0].First) {
		t.Errorf("after RetryFailed: %+v", got)
	}
	if failed, _ := j.Failed(); len(failed) != 0 {
		t.Errorf("failed after RetryFailed: %+v", failed)
	}
	if n, _ := j.RetryFailed(); n != 0 {
		t.Errorf("second RetryFailed = %d", n)
	}
}

func TestStatsEmpty(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	st, err := j.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st != (Stats{}) {
		t.Errorf("stats = %+v", st)
	}
}

// TestDoneWith: the caller's writes commit with the record's end, and also
// when the record was re-recorded meanwhile (what the remote holds is true
// either way); an error from them reaches the caller and ends nothing.
func TestDoneWith(t *testing.T) {
	j, db := openTest(t, t.TempDir(), Options{})
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("side")); return err }); err != nil {
		t.Fatal(err)
	}
	put := func(k string) func(tx *bbolt.Tx) error {
		return func(tx *bbolt.Tx) error { return tx.Bucket([]byte("side")).Put([]byte(k), []byte("v")) }
	}
	has := func(k string) bool {
		var ok bool
		db.View(func(tx *bbolt.Tx) error { ok = tx.Bucket([]byte("side")).Get([]byte(k)) != nil; return nil })
		return ok
	}
	j.Changed("a")
	j.Changed("b")
	syncT(t, j)
	recs := pending(t, j)
	if err := j.DoneWith(recs[0], put("a")); err != nil {
		t.Fatal(err)
	}
	if got := pendingPaths(t, j); !reflect.DeepEqual(got, []string{"b"}) || !has("a") {
		t.Fatalf("after DoneWith(a): pending %v, side write %v", got, has("a"))
	}
	j.Changed("b") // re-recorded while the syncer worked on recs[1]
	syncT(t, j)
	if err := j.DoneWith(recs[1], put("b")); err != nil {
		t.Fatal(err)
	}
	if got := pendingPaths(t, j); !reflect.DeepEqual(got, []string{"b"}) || !has("b") {
		t.Fatalf("after stale DoneWith(b): pending %v, side write %v", got, has("b"))
	}
	boom := errors.New("boom")
	if err := j.DoneWith(pending(t, j)[0], func(*bbolt.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("DoneWith with a failing write: %v, want boom", err)
	}
	if got := pendingPaths(t, j); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("a failed DoneWith ended the record: pending %v", got)
	}
}

// Reset drops pending and failed records (a state adopted by another
// folder), keeps the meta values, and the journal goes on recording.
func TestReset(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("a")
	j.Removed("gone", false)
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	var failed Record
	j.Pending(func(r Record) bool {
		if r.Path == "a" {
			failed = r
		}
		return true
	})
	if err := j.Fail(failed, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	if err := j.SetMeta("remote", []byte("s3://b/")); err != nil {
		t.Fatal(err)
	}
	n, err := j.Reset()
	if err != nil || n != 2 {
		t.Fatalf("Reset = %d, %v; want 2", n, err)
	}
	if s, _ := j.Stats(); s.Pending != 0 || s.Failed != 0 {
		t.Errorf("after Reset: %+v", s)
	}
	if v, _ := j.Meta("remote"); string(v) != "s3://b/" {
		t.Errorf("meta after Reset: %q", v)
	}
	j.Changed("b")
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := pendingPaths(t, j); len(got) != 1 || got[0] != "b" {
		t.Errorf("pending after Reset and a change: %v", got)
	}
}
