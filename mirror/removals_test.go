package mirror

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// More removals than a RemovalScan holds: they are counted as found, and
// once allowed recorded by a second scan, up to the number allowed; over
// the limit nothing is recorded. Removals the journal already holds (made
// through the mount) do not count against the limit.
func TestRemovalScanBeyondWhatItHolds(t *testing.T) {
	defer func(k int) { keepRemovals = k }(keepRemovals)
	keepRemovals = 3
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	names := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	for _, tc := range []struct {
		what      string
		limit     string
		delete    bool
		found     []string // the first scan's removals
		again     []string // the second scan's
		journaled []string // removals already recorded through the mount
		recorded  int
		refused   int // fresh removals refused, 0 for none
		rescanned bool
	}{
		{what: "allowed: recorded by a second scan", limit: "10", delete: true, found: names("f", 8), again: names("f", 8), recorded: 8, rescanned: true},
		{what: "one more gone by the second scan: only what was counted", limit: "10", delete: true, found: names("f", 8), again: names("f", 9), recorded: 8, rescanned: true},
		{what: "over the limit: none", limit: "5", delete: true, found: names("f", 8), refused: 8},
		{what: "those the journal holds do not count", limit: "5", delete: true, found: names("f", 8), again: names("f", 8), journaled: names("f", 4), recorded: 8, rescanned: true},
		{what: "few: no second scan", limit: "5", delete: true, found: names("f", 3), recorded: 3},
		{what: "no limit: recorded as found", limit: "-1", delete: true, found: names("f", 8), recorded: 8},
		{what: "without --delete: recorded as found", limit: "5", found: names("f", 8), recorded: 8},
	} {
		t.Run(tc.what, func(t *testing.T) {
			opened, err := state.Open(t.TempDir(), state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer opened.Close()
			j := opened.Journal()
			for _, p := range tc.journaled {
				j.Removed(p, false)
			}
			if err := j.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			md, err := syncer.ParseMaxDelete(tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			s := NewRemovalScan(context.Background(), j, tc.delete, md)
			for _, p := range tc.found {
				s.Add(p)
			}
			rescanned := false
			n, refusal, err := s.Finish(100, func(fn func(string)) error {
				rescanned = true
				for _, p := range tc.again {
					fn(p)
				}
				return nil
			}, log)
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			st, _ := j.Stats()
			if n != tc.recorded || rescanned != tc.rescanned {
				t.Errorf("recorded %d (second scan %v), want %d (%v)", n, rescanned, tc.recorded, tc.rescanned)
			}
			if want := max(tc.recorded, len(tc.journaled)); st.Pending != want {
				t.Errorf("journal holds %d, want %d", st.Pending, want)
			}
			switch {
			case tc.refused == 0 && refusal != nil:
				t.Errorf("refused %+v", *refusal)
			case tc.refused > 0 && (refusal == nil || refusal.Files != tc.refused):
				t.Errorf("refusal %+v, want %d files", refusal, tc.refused)
			}
		})
	}
}
