// Package synctest holds the helpers shared by the tests of syncer and
// mirror: a bucket on the test server and a client for it, one reconcile or
// verify run with its events as lines, an observing proxy, and file and
// key listings. Only tests import it.
package synctest

import (
	"context"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// Log collects a run's events as "op src" lines.
type Log struct {
	mu    sync.Mutex
	lines []string
}

// Report is a syncer.Options.Report that records e.
func (l *Log) Report(e syncer.Event) {
	if e.Kind == syncer.EventPlanned {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.Kind {
	case syncer.EventDone:
		l.lines = append(l.lines, e.Op+" "+e.Src)
	case syncer.EventFailed:
		l.lines = append(l.lines, "FAILED "+e.Op+" "+e.Src+": "+e.Err.Error())
	case syncer.EventSkipped:
		l.lines = append(l.lines, "skipped "+e.Src+": "+e.Err.Error())
	}
}

// Sorted returns the lines recorded so far, sorted.
func (l *Log) Sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.lines...)
	sort.Strings(out)
	return out
}

// Env is a test's own bucket on the package's test server, and a client
// for it.
type Env struct {
	T      *testing.T
	Srv    *s3test.Server
	Client *remote.Client
	Bucket string
}

// NewEnv gives t a new bucket on the test server.
func NewEnv(t *testing.T) *Env {
	srv := s3test.Get(t)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return &Env{T: t, Srv: srv, Client: c, Bucket: srv.NewBucket(t)}
}

// Sync runs one reconcile and returns its sorted event lines.
func (e *Env) Sync(src, dst string, mod func(*syncer.Options)) (syncer.Summary, []string) {
	e.T.Helper()
	return RunSync(e.T, e.Client, src, dst, mod)
}

// RunSync runs one reconcile from src to dst through r, with options mod
// changes, and returns its summary and sorted event lines.
func RunSync(t *testing.T, r syncer.Remote, src, dst string, mod func(*syncer.Options)) (syncer.Summary, []string) {
	t.Helper()
	s, d := endpoints(t, src, dst)
	l := &Log{}
	opts := syncer.Options{Report: l.Report, Concurrency: 8}
	if mod != nil {
		mod(&opts)
	}
	sum, err := syncer.Reconcile(context.Background(), r, s, d, opts)
	if err != nil {
		t.Fatalf("reconcile %s %s: %v", src, dst, err)
	}
	return sum, l.Sorted()
}

// Verify runs one Verify and returns its summary and findings as lines
// ("differs a.txt: size 1 != 2"), in the order reported.
func Verify(t *testing.T, r syncer.Remote, src, dst string, mod func(*syncer.VerifyOptions)) (syncer.VerifySummary, []string) {
	t.Helper()
	s, d := endpoints(t, src, dst)
	var lines []string
	opts := syncer.VerifyOptions{Concurrency: 4, Report: func(f syncer.Finding) {
		l := string(f.Kind) + " " + f.Rel
		if len(f.Reasons) > 0 {
			l += ": " + strings.Join(f.Reasons, "; ")
		}
		if f.Err != nil {
			l += ": " + f.Err.Error()
		}
		lines = append(lines, l)
	}}
	if mod != nil {
		mod(&opts)
	}
	sum, err := syncer.Verify(context.Background(), r, s, d, opts)
	if err != nil {
		t.Fatalf("verify %s %s: %v", src, dst, err)
	}
	return sum, lines
}

// endpoints parses src and dst, or fails t.
func endpoints(t *testing.T, src, dst string) (s, d syncer.Endpoint) {
	t.Helper()
	s, err := syncer.ParseEndpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	d, err = syncer.ParseEndpoint(dst)
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

// EqualLines fails t unless got holds the lines want, in any order (got
// sorted already).
func EqualLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// OpenState opens a fresh state dir as a mount has it, closed when the
// test ends.
func OpenState(t *testing.T) *state.State {
	t.Helper()
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
