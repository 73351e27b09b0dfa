package mirror_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
)

// waitState polls the drain's state until cond holds.
func (d *drainEnv) waitState(t *testing.T, what string, cond func(mirror.State) bool) mirror.State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := d.dr.State()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened; state %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *drainEnv) failed(t *testing.T) []string {
	t.Helper()
	recs, err := d.j.Failed()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range recs {
		paths = append(paths, r.Path)
	}
	return paths
}

func (d *drainEnv) write(t *testing.T, names ...string) {
	for _, n := range names {
		testfs.WriteFile(t, d.workdir+"/"+n, "content of "+n)
		d.j.Changed(n)
	}
}

// Refused credentials pause the whole drain instead of failing files;
// once the credential chain gives good ones again (the drain reads it again
// before each retry) everything drains by itself.
func TestDrainPausesOnBadCredentials(t *testing.T) {
	good := os.Getenv("AWS_SECRET_ACCESS_KEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	d := newDrainEnv(t, mirror.DrainOptions{Settle: 10 * time.Millisecond})
	d.write(t, "a", "b", "c", "d")
	st := d.waitState(t, "a pause for the credentials", func(s mirror.State) bool { return strings.Contains(s.Paused, "credentials") })
	if st.Offline {
		t.Errorf("bad credentials reported as offline: %+v", st)
	}
	if f := d.failed(t); len(f) != 0 {
		t.Fatalf("files failed for the credentials' fault: %v", f)
	}
	os.Setenv("AWS_SECRET_ACCESS_KEY", good) // rotated back in, as an admin would
	d.waitIdle(t)
	if n := len(d.Srv.Objects(t, d.Bucket, "w/")); n != 4 {
		t.Errorf("%d objects after the credentials were fixed, want 4", n)
	}
	if st := d.dr.State(); st.Paused != "" || len(d.failed(t)) != 0 {
		t.Errorf("after recovery: %+v, failed %v", st, d.failed(t))
	}
}

// denyProxy answers 403 AccessDenied to the uploads deny picks, as a
// bucket policy would, and forwards everything else to the real server.
func denyProxy(t *testing.T, target string, deny *atomic.Pointer[func(*http.Request) bool]) string {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := deny.Load(); f != nil && (*f)(r) {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// AccessDenied on every upload pauses the drain (no file is failed for
// it); AccessDenied on one key only fails that file, and the rest go on.
func TestDrainAccessDenied(t *testing.T) {
	var deny atomic.Pointer[func(*http.Request) bool]
	d := newDrainEnvWith(t, mirror.DrainOptions{Settle: 10 * time.Millisecond, MaxBackoff: time.Second}, nil, func(endpoint string) string {
		return denyProxy(t, endpoint, &deny)
	})
	all := func(r *http.Request) bool { return r.Method == http.MethodPut }
	deny.Store(&all)
	d.write(t, "a", "b", "c", "d", "e")
	d.waitState(t, "a pause for access denied everywhere", func(s mirror.State) bool { return strings.Contains(s.Paused, "access denied") })
	if f := d.failed(t); len(f) != 0 {
		t.Fatalf("files failed while every request was denied: %v", f)
	}
	one := func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/w/secret.txt")
	}
	deny.Store(&one)
	d.write(t, "secret.txt")
	d.waitIdle(t)
	if f := d.failed(t); len(f) != 1 || f[0] != "secret.txt" {
		t.Errorf("failed list %v, want only secret.txt", f)
	}
	if n := len(d.Srv.Objects(t, d.Bucket, "w/")); n != 5 {
		t.Errorf("%d objects, want the 5 allowed files", n)
	}
	if st := d.dr.State(); st.Paused != "" {
		t.Errorf("still paused: %+v", st)
	}
}
