package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// Deletions a mount's start-up scan refused (--max-delete) are in the
// state, so `s3sync status` shows them long after the mount's log scrolled
// away: how many files, and the flag that deletes them. The next start-up
// decides afresh: deleting them, finding them back, or a mount without
// --delete clears the notice.
func TestStatusShowsRefusedScanDeletions(t *testing.T) {
	workdir, stateDir := t.TempDir(), t.TempDir()
	info, _ := json.Marshal(stateInfo{Workdir: workdir, Remote: "s3://photos/2024"})
	if err := os.WriteFile(filepath.Join(stateDir, infoFile), info, 0o600); err != nil {
		t.Fatal(err)
	}
	// The removals a scan found; a start-up that allowed them leaves them
	// in the journal (no drain runs here), so later steps use other names.
	gone := func(name string) []string {
		var out []string
		for i := range 25 {
			out = append(out, fmt.Sprintf("%s%02d", name, i))
		}
		return out
	}
	limit := func(s string) syncer.MaxDelete {
		m, err := syncer.ParseMaxDelete(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	steps := []struct {
		what    string
		removed []string
		sf      syncFlags
		line    string // status's line; "" for none
	}{
		{"25 of 30 gone, default limit", gone("f"), syncFlags{delete: true},
			"  not deleted: 25 files gone from WORKDIR while it was not mounted are still in the bucket, over --max-delete's default of 50%; to delete them from the bucket too, mount again with --max-delete 25"},
		{"still gone, --max-delete 10", gone("f"), syncFlags{delete: true, maxDelete: limit("10")},
			"  not deleted: 25 files gone from WORKDIR while it was not mounted are still in the bucket, over --max-delete 10; to delete them from the bucket too, mount again with --max-delete 25"},
		{"found back", nil, syncFlags{delete: true}, ""},
		{"gone again", gone("f"), syncFlags{delete: true}, "25 files gone"},
		{"deleted with --max-delete 25", gone("f"), syncFlags{delete: true, maxDelete: limit("25")}, ""},
		{"others gone", gone("g"), syncFlags{delete: true}, "25 files gone"},
		{"mounted without --delete", gone("g"), syncFlags{}, ""},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range steps {
		// One start-up's decision, in a state the status command then
		// reads as it would after the mount stopped.
		st, err := state.Open(stateDir, state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, refusal := scanRemovals(st.Journal(), s.removed, 30, s.sf, log)
		mirror.RecordScanRefusal(st, refusal, log)
		st.Close()

		r := s3sync(t, "status", "--state-dir", stateDir, workdir)
		wantCode(t, r, 0)
		var line string
		for _, l := range r.lines() {
			if strings.HasPrefix(l, "  not deleted:") {
				line = l
			}
		}
		if s.line == "" && line != "" || !strings.Contains(line, s.line) {
			t.Errorf("%s: status line %q, want %q\n%s", s.what, line, s.line, r)
		}

		r = s3sync(t, "status", "--json", "--state-dir", stateDir, workdir)
		var rep struct {
			Refused *struct {
				Files, Of int
				Allow     string
			} `json:"refused_deletions"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("%s: %v\n%s", s.what, err, r)
		}
		switch {
		case s.line == "" && rep.Refused != nil:
			t.Errorf("%s: --json still reports refused deletions: %+v", s.what, *rep.Refused)
		case s.line != "" && (rep.Refused == nil || rep.Refused.Files != 25 || rep.Refused.Of != 30 || rep.Refused.Allow != "--max-delete 25"):
			t.Errorf("%s: --json refused_deletions = %+v, want 25 of 30, --max-delete 25\n%s", s.what, rep.Refused, r.stdout)
		}
	}
}

// scanRemovals is a mirror.RemovalScan of removals already found, for tests.
func scanRemovals(j *journal.Journal, removed []string, cached int, sf syncFlags, log *slog.Logger) (int, *state.ScanRefusal) {
	s := mirror.NewRemovalScan(context.Background(), j, sf.delete, sf.maxDelete)
	for _, p := range removed {
		s.Add(p)
	}
	n, refusal, _ := s.Finish(cached, func(fn func(string)) error {
		for _, p := range removed {
			fn(p)
		}
		return nil
	}, log)
	return n, refusal
}
