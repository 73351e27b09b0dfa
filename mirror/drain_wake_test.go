package mirror_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
)

// countingJournal counts the drain loop's passes: each reads the journal's
// head once.
type countingJournal struct {
	*journal.Journal
	passes atomic.Int64
}

func (c *countingJournal) Next(b journal.Batch) (journal.Batch, error) {
	if len(b.Records) == 0 {
		// A pass asks for the next run only after a run with records:
		// a call after none is a new pass.
		c.passes.Add(1)
	}
	return c.Journal.Next(b)
}

// An untar through the mount closes thousands of files a second. A close
// wakes the drain loop only when the loop holds a record back for a file
// open for writing: otherwise every close cost a pass over the journal and
// two thread wake-ups, a fifth of the mount's CPU during an untar. A file
// held back while open is still sent once it is closed.
func TestDrainWriterClosedWakesOnlyForHeldFiles(t *testing.T) {
	e := synctest.NewEnv(t)
	st := synctest.OpenState(t)
	cj := &countingJournal{Journal: st.Journal()}
	workdir := t.TempDir()
	loc, _ := remote.ParseURL("s3://" + e.Bucket + "/w")
	var writing atomic.Bool
	var asked atomic.Int64
	d := mirror.NewDrainer(e.Client, cj, st.Cache(), st, workdir, loc, mirror.DrainOptions{
		Settle: 10 * time.Millisecond, WriterID: "test-writer-closed",
		Writing: func(p string) bool {
			if p != "open.bin" {
				return false
			}
			asked.Add(1)
			return writing.Load()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Nothing held back: closes paced as an untar's, 1 ms apart, leave the
	// loop asleep (it still looks once a second on its own).
	before := cj.passes.Load()
	for range 500 {
		d.WriterClosed()
		time.Sleep(time.Millisecond) // pacing, not synchronisation
	}
	if n := cj.passes.Load() - before; n > 25 {
		t.Errorf("500 closes with nothing waiting for them woke the drain loop %d times", n)
	}

	// A file open for writing is held back, and sent once it is closed.
	writing.Store(true)
	path := filepath.Join(workdir, "open.bin")
	if err := os.WriteFile(path, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	st.Journal().Changed("open.bin")
	deadline := time.Now().Add(10 * time.Second)
	for asked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the drain loop never asked whether open.bin is open for writing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.WriteFile(path, []byte("whole file"), 0o644); err != nil {
		t.Fatal(err)
	}
	writing.Store(false)
	d.WriterClosed()
	deadline = time.Now().Add(10 * time.Second)
	for e.Srv.Objects(t, e.Bucket, "w/")["w/open.bin"] != int64(len("whole file")) {
		if time.Now().After(deadline) {
			t.Fatalf("open.bin was not sent after it was closed: bucket holds %v", e.Srv.Objects(t, e.Bucket, "w/"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
