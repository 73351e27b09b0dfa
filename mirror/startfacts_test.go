package mirror

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

// The probe of conditional requests writes under the user's prefix, so it
// runs once per remote: a second mount reads the answer from the state,
// and a mount of another remote probes again.
func TestConditionsProbedOncePerRemote(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	p, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, err := remote.New(context.Background(), remote.Config{EndpointURL: p.URL()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	loc := remote.Location{Bucket: bucket, Prefix: "w/"}

	first := recordConditions(context.Background(), client, st, loc, true, log)
	if first == nil || !first.Put {
		t.Fatalf("first probe: %+v, want conditional PUTs honoured", first)
	}
	n := p.Requests()
	again := recordConditions(context.Background(), client, st, loc, true, log)
	if p.Requests() != n {
		t.Errorf("a second mount of the same remote made %d requests to probe again", p.Requests()-n)
	}
	if again == nil || *again != *first {
		t.Errorf("kept answer %+v, want %+v", again, first)
	}
	recordConditions(context.Background(), client, st, remote.Location{Bucket: bucket, Prefix: "other/"}, true, log)
	if p.Requests() == n {
		t.Error("another remote was not probed")
	}
}
