package journal

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

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
