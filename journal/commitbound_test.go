package journal

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestCommitBoundedWhenScattered: a burst of changes scattered over a large
// journal (a day offline, every file of a big tree edited in no particular
// order) commits in transactions that each load about commitNodes B+tree
// nodes at most, instead of one leaf or two per record for MaxBatch records
// (thousands of nodes: tens of MiB of heap, as much of the state file
// mapped). Every change is still committed, in the order it was made, and
// an operation queued behind the burst still runs.
func TestCommitBoundedWhenScattered(t *testing.T) {
	const files, changes = 50000, 8192
	db, err := testDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Commits come only when Sync asks, so the burst is queued whole, as
	// when the committer falls behind.
	var mu sync.Mutex
	var last, most int64
	j, err := Open(db, Options{CommitInterval: time.Hour, BurstInterval: time.Hour, OnCommit: func(_ time.Duration, err error) {
		if err != nil {
			t.Errorf("commit: %v", err)
		}
		st := db.Stats().TxStats
		n := st.GetNodeCount()
		mu.Lock()
		most, last = max(most, n-last), n
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	order := fillThenScatter(t, j, files, changes, func() {
		mu.Lock()
		most = 0
		mu.Unlock()
	})
	meta := make(chan error, 1)
	go func() { meta <- j.SetMeta("after-the-burst", []byte("yes")) }()
	syncT(t, j)
	if err := <-meta; err != nil {
		t.Fatalf("SetMeta queued behind the burst: %v", err)
	}

	mu.Lock()
	got := most
	mu.Unlock()
	// The op that crosses the bound loads a few nodes of its own: a leaf
	// and the branches above it in each bucket it touches.
	if bound := int64(commitNodes + 32); got > bound {
		t.Errorf("a commit of the scattered burst loaded %d B+tree nodes, want at most %d", got, bound)
	}
	checkScatteredOrder(t, j, files, order)
	if v, err := j.Meta("after-the-burst"); err != nil || string(v) != "yes" {
		t.Errorf("meta after the burst = %q, %v", v, err)
	}
}

// TestQueueBounded: a writer that makes changes faster than the committer
// commits them (a day offline written at once) and calls Throttle before
// each waits once maxQueued ops are queued, instead of queueing without
// bound; every record still commits, in the order it was made.
func TestQueueBounded(t *testing.T) {
	db, err := testDB(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Without a waiter the committer lets records gather for an hour: it
	// is as far behind as it can be.
	j, err := Open(db, Options{CommitInterval: time.Hour, BurstInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const n = 3 * maxQueued
	path := func(i int) string { return fmt.Sprintf("d%02d/f%06d", i%13, i) }
	most := 0
	for i := range n {
		j.Throttle()
		j.Changed(path(i))
		j.mu.Lock()
		most = max(most, len(j.queue))
		j.mu.Unlock()
	}
	if most > maxQueued+1 {
		t.Errorf("%d ops queued at most, want at most %d", most, maxQueued+1)
	}
	syncT(t, j)
	recs := pending(t, j)
	if len(recs) != n {
		t.Fatalf("%d records pending, want %d", len(recs), n)
	}
	for i, r := range recs {
		if r.Path != path(i) {
			t.Fatalf("pending record %d is %q, want %q", i, r.Path, path(i))
		}
	}
}

// scatteredPath is file i of a tree of 700 directories: records of
// consecutive i are far apart in the journal's key order.
func scatteredPath(i int) string {
	return fmt.Sprintf("dir%03d/a-file-with-a-longish-name-%06d.txt", i%700, i)
}

// fillThenScatter records and commits files changes in key order, calls
// between, then records changes of the same paths again in a random order
// (the burst, left for the caller to commit) and returns that order.
func fillThenScatter(t *testing.T, j *Journal, files, changes int, between func()) []int {
	t.Helper()
	for i := range files {
		j.Changed(scatteredPath(i))
	}
	syncT(t, j)
	between()
	order := rand.New(rand.NewPCG(1, 2)).Perm(files)[:changes]
	for _, i := range order {
		j.Changed(scatteredPath(i))
	}
	return order
}

// checkScatteredOrder: every path is pending once, the burst's last, in the
// order its changes were made.
func checkScatteredOrder(t *testing.T, j *Journal, files int, order []int) {
	t.Helper()
	recs := pending(t, j)
	if len(recs) != files {
		t.Fatalf("%d records pending, want %d", len(recs), files)
	}
	for k, i := range order {
		if r := recs[files-len(order)+k]; r.Path != scatteredPath(i) {
			t.Fatalf("pending record %d is %q, want %q: the changes are out of the order they were made in", files-len(order)+k, r.Path, scatteredPath(i))
		}
	}
}
