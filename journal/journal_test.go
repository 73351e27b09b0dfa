package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func openTest(t testing.TB, dir string, opts Options) (*Journal, *bbolt.DB) {
	t.Helper()
	db, err := testDB(dir)
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
