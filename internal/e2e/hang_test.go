package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// Issue 20: a request that is never answered holds its file only for the
// few seconds a small request may take, not for minutes. 100 small files
// written through the mount, with every 7th request to the store held
// unanswered (a black hole: nothing forwarded, nothing answered), are all
// in the bucket within 60 s of the first write.
func TestMountHungRequestsRetriedSoon(t *testing.T) {
	const files, within = 100, 60 * time.Second
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	proxy, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	m := newMountVia(t, bucket, proxy.URL(), "--delete")
	m.start()
	// From here on: the mount is up, its start-up requests are done.
	n := 0 // Match is called under the proxy's lock
	proxy.SetRules(faultproxy.Rule{Kind: faultproxy.Hang, Match: func(*http.Request) bool {
		n++
		return n%7 == 0
	}})

	start := time.Now()
	for i := range files {
		testfs.WriteFile(t, filepath.Join(m.mountpoint, fmt.Sprintf("f%03d.txt", i)), fmt.Sprintf("file %d", i))
	}
	t.Logf("%d files written in %v", files, time.Since(start).Round(time.Millisecond))
	got := 0
	for {
		got = len(srv.Objects(t, bucket, "data/"))
		if got == files || time.Since(start) > within {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	t.Logf("%d of %d files in the bucket after %v; proxy: %s, %d requests held now", got, files, took, proxy.Counts(), proxy.Hanging())
	if got != files {
		t.Fatalf("only %d of %d files in the bucket %v after the first write, with every 7th request unanswered", got, files, within)
	}
	proxy.SetRules()
	proxy.Release()
	m.waitSettled(2 * time.Minute)
	m.bucketMatchesWorkdir()
}
