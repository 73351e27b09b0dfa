package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func openTest(t testing.TB, dir string, opts Options) (*Journal, *bbolt.DB) {
	t.Helper()
	db, err := OpenDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	j, err := Open(db, opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		j.Close()
		db.Close()
	})
	return j, db
}

func closeBoth(t *testing.T, j *Journal, db *bbolt.DB) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// syncT makes every record durable. The deadline only stops a hung test:
// a burst of thousands of scattered commits took over 10 s, and its whole
// test 90 s, on a loaded 2-core machine.
func syncT(t testing.TB, j *Journal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func pending(t testing.TB, j *Journal) []Record {
	t.Helper()
	var recs []Record
	if err := j.Pending(func(r Record) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatal(err)
	}
	return recs
}

func pendingPaths(t testing.TB, j *Journal) []string {
	var paths []string
	for _, r := range pending(t, j) {
		paths = append(paths, r.Path)
	}
	return paths
}

// A state dir OpenDB makes is private; one that exists is used as it is,
// never chmod-ed (a user's --state-dir may be a folder they share), and the
// database in it is private either way.
func TestOpenDBModes(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	db0, err := OpenDB(shared)
	if err != nil {
		t.Fatal(err)
	}
	db0.Close()
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o755 {
		t.Errorf("existing state dir was chmod-ed to %o", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(shared, DBName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %o, want 600", fi.Mode().Perm())
	}

	private := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := OpenDB(private)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if fi, _ := os.Stat(filepath.Join(private, DBName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %o, want 600", fi.Mode().Perm())
	}

	fresh := filepath.Join(t.TempDir(), "a", "b")
	db2, err := OpenDB(fresh)
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("new state dir mode %o, want 700", fi.Mode().Perm())
	}
}

func TestOpenDBLocked(t *testing.T) {
	dir := t.TempDir()
	db, err := OpenDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = OpenDB(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second OpenDB: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("lock timeout took %v", d)
	}
}

type step struct {
	op       Op
	path     string
	from     string
	isDir    bool
	toFailed bool // instead of recording: Fail the path's current record
}

func TestCoalescing(t *testing.T) {
	type want struct {
		path  string
		op    Op
		from  string
		isDir bool
	}
	tests := []struct {
		name  string
		steps []step
		want  []want // pending, in Seq order
	}{
		{"repeat changes", []step{{op: OpChanged, path: "a"}, {op: OpChanged, path: "b"}, {op: OpChanged, path: "a"}},
			[]want{{path: "b", op: OpChanged}, {path: "a", op: OpChanged}}},
		{"back-to-back changes are one record", []step{{op: OpChanged, path: "a"}, {op: OpChanged, path: "a"}, {op: OpChanged, path: "a"}, {op: OpChanged, path: "b"}},
			[]want{{path: "a", op: OpChanged}, {path: "b", op: OpChanged}}},
		{"change then remove", []step{{op: OpChanged, path: "a"}, {op: OpRemoved, path: "a"}},
			[]want{{path: "a", op: OpRemoved}}},
		{"remove then recreate", []step{{op: OpRemoved, path: "a"}, {op: OpChanged, path: "a"}},
			[]want{{path: "a", op: OpChanged}}},
		{"remove dir then recreate keeps the tree removal", []step{{op: OpRemoved, path: "d", isDir: true}, {op: OpChanged, path: "d"}},
			[]want{{path: "d", op: OpRemoved, isDir: true}}},
		{"dir renamed away then made again", []step{{op: OpRenamed, from: "d", path: "e", isDir: true}, {op: OpChanged, path: "d"}},
			[]want{{path: "e", op: OpRenamed, from: "d", isDir: true}, {path: "d", op: OpRemoved, isDir: true}}},
		{"rename records new then old", []step{{op: OpRenamed, from: "a", path: "b"}},
			[]want{{path: "b", op: OpRenamed, from: "a"}, {path: "a", op: OpRemoved}}},
		// The source's removal stays behind the rename, which copies from it.
		{"change keeps rename hint", []step{{op: OpRenamed, from: "a", path: "b"}, {op: OpChanged, path: "b"}},
			[]want{{path: "b", op: OpChanged, from: "a"}, {path: "a", op: OpRemoved}}},
		{"change keeps dir rename hint", []step{{op: OpRenamed, from: "d1", path: "d2", isDir: true}, {op: OpChanged, path: "d2"}},
			[]want{{path: "d2", op: OpChanged, from: "d1", isDir: true}, {path: "d1", op: OpRemoved, isDir: true}}},
		{"hint survives repeated changes", []step{{op: OpRenamed, from: "a", path: "b"}, {op: OpChanged, path: "b"}, {op: OpChanged, path: "b"}},
			[]want{{path: "b", op: OpChanged, from: "a"}, {path: "a", op: OpRemoved}}},
		{"a new file at the source is not moved", []step{{op: OpRenamed, from: "a", path: "b"}, {op: OpChanged, path: "a"}, {op: OpChanged, path: "b"}},
			[]want{{path: "a", op: OpChanged}, {path: "b", op: OpChanged, from: "a"}}},
		{"remove drops rename hint", []step{{op: OpRenamed, from: "a", path: "b"}, {op: OpRemoved, path: "b"}},
			[]want{{path: "a", op: OpRemoved}, {path: "b", op: OpRemoved}}},
		{"rename back", []step{{op: OpRenamed, from: "a", path: "b"}, {op: OpRenamed, from: "b", path: "a"}},
			[]want{{path: "a", op: OpRenamed, from: "b"}, {path: "b", op: OpRemoved}}},
		{"rename onto itself is a change", []step{{op: OpRenamed, from: "a", path: "a"}},
			[]want{{path: "a", op: OpChanged}}},
		{"empty path ignored", []step{{op: OpChanged, path: ""}, {op: OpChanged, path: "x"}},
			[]want{{path: "x", op: OpChanged}}},
		{"re-record leaves failed list", []step{{op: OpChanged, path: "a"}, {path: "a", toFailed: true}, {op: OpChanged, path: "a"}},
			[]want{{path: "a", op: OpChanged}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, _ := openTest(t, t.TempDir(), Options{})
			for _, s := range tt.steps {
				switch {
				case s.toFailed:
					syncT(t, j)
					for _, r := range pending(t, j) {
						if r.Path == s.path {
							if err := j.Fail(r, errors.New("boom")); err != nil {
								t.Fatal(err)
							}
						}
					}
				case s.op == OpChanged:
					j.Changed(s.path)
				case s.op == OpRemoved:
					j.Removed(s.path, s.isDir)
				case s.op == OpRenamed:
					j.Renamed(s.from, s.path, s.isDir)
				}
			}
			syncT(t, j)
			got := pending(t, j)
			if len(got) != len(tt.want) {
				t.Fatalf("pending = %+v, want %+v", got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Path != w.path || g.Op != w.op || g.From != w.from || g.IsDir != w.isDir {
					t.Errorf("pending[%d] = %+v, want %+v", i, g, w)
				}
				if i > 0 && got[i-1].Seq >= g.Seq {
					t.Errorf("seq not increasing: %d then %d", got[i-1].Seq, g.Seq)
				}
			}
			failed, err := j.Failed()
			if err != nil {
				t.Fatal(err)
			}
			if len(failed) != 0 {
				t.Errorf("failed = %+v, want none", failed)
			}
		})
	}
}

func TestCoalescingKeepsFirst(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("a")
	syncT(t, j)
	first := pending(t, j)[0]
	time.Sleep(2 * time.Millisecond) // First and Last must differ measurably
	j.Changed("a")
	syncT(t, j)
	second := pending(t, j)[0]
	if !second.First.Equal(first.First) {
		t.Errorf("First changed from %v to %v", first.First, second.First)
	}
	if !second.Last.After(first.Last) {
		t.Errorf("Last %v not after %v", second.Last, first.Last)
	}
	if second.Seq <= first.Seq {
		t.Errorf("Seq %d not after %d", second.Seq, first.Seq)
	}
}

func TestFIFOOrder(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{MaxBatch: 7})
	var want []string
	for i := range 1000 {
		p := fmt.Sprintf("dir/%04d", 999-i) // reverse of key order: order must come from Seq
		j.Changed(p)
		want = append(want, p)
	}
	syncT(t, j)
	got := pendingPaths(t, j)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pending order differs; first got %v", got[:5])
	}
	// Early stop.
	n := 0
	if err := j.Pending(func(Record) bool { n++; return n < 300 }); err != nil {
		t.Fatal(err)
	}
	if n != 300 {
		t.Errorf("fn called %d times after returning false at 300", n)
	}
}

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

func TestSyncDurable(t *testing.T) {
	dir := t.TempDir()
	// An hour-long interval: only Sync can have made these commit.
	j, db := openTest(t, dir, Options{CommitInterval: time.Hour})
	j.Changed("a")
	j.Renamed("x", "y", false)
	syncT(t, j)
	var n int
	db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	if n != 3 {
		t.Fatalf("%d records committed after Sync, want 3", n)
	}
	closeBoth(t, j, db)

	j2, _ := openTest(t, dir, Options{})
	if got := pendingPaths(t, j2); fmt.Sprint(got) != "[a y x]" {
		t.Errorf("after reopen pending = %v", got)
	}
}

func TestCloseCommitsQueued(t *testing.T) {
	dir := t.TempDir()
	j, db := openTest(t, dir, Options{CommitInterval: time.Hour})
	for i := range 10000 {
		j.Changed(fmt.Sprint(i))
	}
	closeBoth(t, j, db)
	j2, _ := openTest(t, dir, Options{})
	if got := len(pending(t, j2)); got != 10000 {
		t.Errorf("%d records after Close and reopen, want 10000", got)
	}
}

func TestReopenSeqMonotonic(t *testing.T) {
	dir := t.TempDir()
	j, db := openTest(t, dir, Options{})
	j.Changed("a")
	j.Changed("b")
	syncT(t, j)
	recs := pending(t, j)
	last := recs[1].Seq
	// Drain everything, so nothing left in the db hints at the old seq.
	for _, r := range recs {
		if err := j.Done(r); err != nil {
			t.Fatal(err)
		}
	}
	closeBoth(t, j, db)

	j2, _ := openTest(t, dir, Options{})
	j2.Changed("a")
	syncT(t, j2)
	if got := pending(t, j2); got[0].Seq <= last {
		t.Errorf("seq after reopen %d, want > %d", got[0].Seq, last)
	}
}

func TestConcurrentRecording(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{CommitInterval: time.Millisecond, MaxBatch: 100})
	const workers, each = 16, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				j.Changed(fmt.Sprintf("w%d/f%d", w, i))
				j.Changed("shared") // coalesces across goroutines
				if i%100 == 0 {
					if err := j.Sync(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	// The syncer drains concurrently.
	stop := make(chan struct{})
	drained := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				drained <- n
				return
			case <-j.Notify():
			}
			j.Pending(func(r Record) bool {
				if r.Path != "shared" {
					if err := j.Done(r); err != nil {
						t.Error(err)
					}
					n++
				}
				return true
			})
		}
	}()
	wg.Wait()
	syncT(t, j)
	close(stop)
	n := <-drained
	left := pending(t, j)
	shared := 0
	for _, r := range left {
		if r.Path == "shared" {
			shared++
		}
	}
	if shared != 1 {
		t.Errorf("%d records for shared, want 1", shared)
	}
	if n+len(left)-1 != workers*each {
		t.Errorf("drained %d + left %d, want %d distinct paths", n, len(left)-1, workers*each)
	}
}

func TestNotify(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	select {
	case <-j.Notify():
		t.Fatal("notified before any record")
	default:
	}
	j.Changed("a")
	select {
	case <-j.Notify():
	case <-time.After(10 * time.Second):
		t.Fatal("no notification after a record")
	}
	if got := pendingPaths(t, j); fmt.Sprint(got) != "[a]" {
		t.Errorf("record not committed when notified: %v", got)
	}
}

func TestMeta(t *testing.T) {
	dir := t.TempDir()
	j, db := openTest(t, dir, Options{})
	if v, err := j.Meta("last-sync"); v != nil || err != nil {
		t.Fatalf("unset meta = %q, %v", v, err)
	}
	if err := j.SetMeta("last-sync", []byte("2025-01-01T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	closeBoth(t, j, db)
	j2, _ := openTest(t, dir, Options{})
	if v, err := j2.Meta("last-sync"); string(v) != "2025-01-01T00:00:00Z" || err != nil {
		t.Errorf("meta after reopen = %q, %v", v, err)
	}
}

func TestCommitFailureKeepsRecords(t *testing.T) {
	j, db := openTest(t, t.TempDir(), Options{})
	syncT(t, j)
	db.Close() // every commit fails from now on
	j.Changed("a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.Sync(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Sync on a dead db = %v, want the commit error", err)
	}
	if err := j.Done(Record{Path: "a", Seq: 1}); err == nil {
		t.Error("Done on a dead db succeeded")
	}
	if err := j.Close(); err == nil {
		t.Error("Close reported no error with records uncommitted")
	}
}

func TestAfterClose(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	j.Changed("a")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j.Changed("b") // dropped, must not panic or block
	if err := j.Sync(context.Background()); err != nil {
		t.Errorf("Sync after Close with everything committed: %v", err)
	}
	if err := j.Done(Record{Path: "a"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Done after Close: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSyncContext(t *testing.T) {
	j, db := openTest(t, t.TempDir(), Options{})
	syncT(t, j)
	// Hold bbolt's writer lock so the commit can't finish.
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	j.Changed("a")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := j.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync = %v, want deadline exceeded", err)
	}
	tx.Rollback()
	syncT(t, j)
}

func TestRecordEncoding(t *testing.T) {
	now := time.Unix(1700000000, 123456789)
	for _, r := range []Record{
		{Seq: 1, Path: "a", Op: OpChanged},
		{Seq: 1 << 60, Path: "é/b", Op: OpRenamed, From: "x y", IsDir: true, First: now, Last: now.Add(time.Second), Attempts: 7, Err: "boom", ErrTime: now},
		{Seq: 2, Path: "old", Op: OpRemoved, First: time.Unix(-5, 1)},
	} {
		got, err := unmarshalRecord(r.Path, r.marshal())
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != r.Seq || got.Path != r.Path || got.Op != r.Op || got.From != r.From || got.IsDir != r.IsDir ||
			!got.First.Equal(r.First) || !got.Last.Equal(r.Last) || got.Attempts != r.Attempts || got.Err != r.Err ||
			!got.ErrTime.Equal(r.ErrTime) || got.First.IsZero() != r.First.IsZero() {
			t.Errorf("round trip: got %+v, want %+v", got, r)
		}
		data := r.marshal()
		for n := range data {
			if _, err := unmarshalRecord(r.Path, data[:n]); !errors.Is(err, errCorrupt) {
				t.Errorf("truncated to %d bytes: %v", n, err)
			}
		}
	}
}

// BenchmarkRecordCommit measures recording throughput end to end: records
// made and committed (durable) per second.
func BenchmarkRecordCommit(b *testing.B) {
	j, _ := openTest(b, b.TempDir(), Options{})
	paths := make([]string, 100000)
	for i := range paths {
		paths[i] = fmt.Sprintf("project/src/dir%03d/file%06d.go", i%500, i)
	}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		j.Changed(paths[i%len(paths)])
	}
	syncT(b, j)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkRecordCommitParallel records from many goroutines, as FUSE does.
func BenchmarkRecordCommitParallel(b *testing.B) {
	j, _ := openTest(b, b.TempDir(), Options{})
	start := time.Now()
	var id sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		id.Lock()
		w := next
		next++
		id.Unlock()
		for i := 0; pb.Next(); i++ {
			j.Changed(fmt.Sprintf("w%d/f%d", w, i%50000))
		}
	})
	syncT(b, j)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
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

// TestBackToBackKeepsFirstAndLast: changes merged in the queue keep the
// first one's time as First and the latest one's as Last, and Sync counts
// each of them as made durable.
func TestBackToBackKeepsFirstAndLast(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{CommitInterval: time.Hour})
	before := time.Now()
	j.Changed("a")
	time.Sleep(2 * time.Millisecond)
	mid := time.Now()
	j.Changed("a")
	j.Changed("a")
	syncT(t, j)
	recs := pending(t, j)
	if len(recs) != 1 {
		t.Fatalf("pending = %+v, want one record", recs)
	}
	r := recs[0]
	if r.First.Before(before) || !r.First.Before(mid) || r.Last.Before(mid) {
		t.Errorf("First %v, Last %v; want First in [%v, %v), Last after %v", r.First, r.Last, before, mid, mid)
	}
	if s, err := j.Stats(); err != nil || s.Pending != 1 {
		t.Errorf("stats %+v, %v", s, err)
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

// Options.OnCommit is told of each group commit, so the mount can show
// how long a change waits for its fsyncs.
func TestOnCommit(t *testing.T) {
	var mu sync.Mutex
	var commits []time.Duration
	j, _ := openTest(t, t.TempDir(), Options{OnCommit: func(d time.Duration, err error) {
		if err != nil {
			t.Errorf("commit: %v", err)
		}
		mu.Lock()
		commits = append(commits, d)
		mu.Unlock()
	}})
	j.Changed("a")
	j.Changed("b")
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) == 0 || commits[0] <= 0 {
		t.Errorf("commits observed: %v", commits)
	}
}
