package journal

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Status counts and summarizes what is pending by EachPending: every
// pending record once, over several read transactions, whatever the queue
// order, and none of the failed ones.
func TestEachPending(t *testing.T) {
	j, _ := openTest(t, t.TempDir(), Options{})
	const n = 2*eachChunk + 10
	for i := range n {
		j.Changed(fmt.Sprintf("d%d/f%05d", i%7, n-i)) // queue order is not path order
	}
	j.Changed(fmt.Sprintf("d0/f%05d", n)) // re-recorded: still one record
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	var first Record
	j.Pending(func(r Record) bool { first = r; return false })
	if err := j.Fail(first, fmt.Errorf("refused")); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	prev := ""
	err := j.EachPending(func(r Record) bool {
		if seen[r.Path] || r.Path <= prev {
			t.Fatalf("%s after %s: want each path once, in order", r.Path, prev)
		}
		seen[r.Path], prev = true, r.Path
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n-1 || seen[first.Path] {
		t.Errorf("saw %d records (failed one included: %v); want the %d pending", len(seen), seen[first.Path], n-1)
	}
	stopped := 0
	j.EachPending(func(Record) bool { stopped++; return stopped < 3 })
	if stopped != 3 {
		t.Errorf("fn returning false after 3 records: called %d times", stopped)
	}
}

// BenchmarkStatusWalk compares the two walks over a large queue (go test
// -bench StatusWalk -benchtime 3x ./journal).
func BenchmarkStatusWalk(b *testing.B) {
	j, _ := openTest(b, b.TempDir(), Options{})
	const n = 200000
	for i := range n {
		j.Changed(fmt.Sprintf("dir%03d/sub%02d/file-%07d.txt", i%997, i%13, i))
	}
	if err := j.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, w := range []struct {
		name string
		walk func(func(Record) bool) error
	}{{"queue", j.Pending}, {"paths", j.EachPending}} {
		b.Run(w.name, func(b *testing.B) {
			for b.Loop() {
				t0 := time.Now()
				c := 0
				if err := w.walk(func(Record) bool { c++; return true }); err != nil || c != n {
					b.Fatal(err, c)
				}
				b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/walk")
			}
		})
	}
}
