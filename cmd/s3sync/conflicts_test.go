package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

// status, unmounted, lists the open conflicts (text and JSON) and says
// when the store cannot make deletes conditional.
func TestStatusConflicts(t *testing.T) {
	dir := t.TempDir()
	info, _ := json.Marshal(stateInfo{Workdir: "/w", Remote: "s3://b/p"})
	os.WriteFile(filepath.Join(dir, infoFile), info, 0o600)
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := st.Cache()
	now := time.Now()
	c.PutConflict("docs/report.pdf", cache.Conflict{Kind: cache.ConflictChanged, Copy: "docs/report.conflict-laptop-20261126-193000.pdf", RemoteETag: `"abc"`, Since: now})
	c.PutConflict("old.txt", cache.Conflict{Kind: cache.ConflictDeleted, Since: now})
	st.SetConditions("", remote.Conditions{Put: true})
	st.Close()

	rep, err := statusOf(context.Background(), dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Conflicts) != 2 || rep.Conflicts[0].Path != "docs/report.pdf" || rep.Conflicts[0].Kind != "changed" ||
		rep.Conflicts[0].Copy != "docs/report.conflict-laptop-20261126-193000.pdf" || rep.Conflicts[1].Kind != "deleted" {
		t.Errorf("conflicts %+v", rep.Conflicts)
	}
	out := captureStdout(t, func() { printReport(rep) })
	for _, want := range []string{
		"conflicts:   2",
		"docs/report.pdf: changed here and there; this side's version is docs/report.conflict-laptop-20261126-193000.pdf",
		"old.txt: deleted here, changed there",
		"conditional deletes: not supported by this store",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"conflicts":[{"path":"docs/report.pdf","kind":"changed"`) {
		t.Errorf("JSON: %s", b)
	}
}

func captureStdout(t *testing.T, fn func()) string {
	t.Helper()
	r, w, _ := os.Pipe()
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() { b, _ := io.ReadAll(r); done <- string(b) }()
	fn()
	w.Close()
	os.Stdout = old
	return <-done
}
