package mirror_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// drainEnv is a drain loop on a real journal and cache, talking to the real
// server through an observing proxy; the test plays the FUSE layer's part
// by recording changes itself.
type drainEnv struct {
	*synctest.Env
	p       *synctest.Proxy
	st      *state.State
	j       *journal.Journal
	c       *cache.Cache
	workdir string
	dr      *mirror.Drainer
	cancel  context.CancelFunc
	done    chan struct{}
	// for restart
	r    syncer.Remote
	loc  remote.Location
	opts mirror.DrainOptions
}

// restart stops the drain as a kill would (nothing in memory survives;
// the journal and cache do) and starts a new one on the same state.
func (d *drainEnv) restart(t *testing.T) {
	t.Helper()
	d.cancel()
	<-d.done
	dr := mirror.NewDrainer(d.r, d.j, d.c, d.st, d.workdir, d.loc, d.opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.dr, d.cancel, d.done = dr, cancel, done
	go func() { dr.Run(ctx); close(done) }()
}

// crashAndRestart is a kill -9 of a mount behind faults: the drain stops,
// offline changes WORKDIR while nothing runs, the faults end, and a new
// drain starts after the start-up scan (as cmd/s3sync's), run until idle.
func (d *drainEnv) crashAndRestart(t *testing.T, proxy *faultproxy.Proxy, offline func()) {
	t.Helper()
	d.cancel()
	<-d.done
	offline()
	proxy.SetRules()
	d.restart(t)
	err := d.c.Scan(d.workdir, nil, func(p string) { d.j.Changed(p) }, func(p string) { d.j.Removed(p, false) })
	if err != nil {
		t.Fatal(err)
	}
	d.waitIdle(t)
}

func newDrainEnv(t *testing.T, opts mirror.DrainOptions) *drainEnv {
	return newDrainEnvWith(t, opts, nil, nil)
}

// newDrainEnvWith lets wrap put a decorator (delays, reordering) between
// the drain loop and the real client, and front put another proxy in front
// of the server (it returns the endpoint to use).
func newDrainEnvWith(t *testing.T, opts mirror.DrainOptions, wrap func(syncer.Remote) syncer.Remote, front func(endpoint string) string) *drainEnv {
	return newDrainOn(t, synctest.NewEnv(t), opts, wrap, front)
}

var drainIDs atomic.Int64

// newDrainBehindFaults is a drain whose requests go through a fault proxy
// (no rules yet), for tests that lose answers on purpose.
func newDrainBehindFaults(t *testing.T, opts mirror.DrainOptions) (*drainEnv, *faultproxy.Proxy) {
	var proxy *faultproxy.Proxy
	d := newDrainEnvWith(t, opts, nil, func(endpoint string) string {
		var err error
		if proxy, err = faultproxy.New(endpoint, 1); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Close)
		return proxy.URL()
	})
	return d, proxy
}

// The drain ends records through the state, with the cache writes of each.
var _ mirror.Ender = (*state.State)(nil)

// openCache is openState's cache alone.
func openCache(t *testing.T) *cache.Cache {
	t.Helper()
	return synctest.OpenState(t).Cache()
}

// newDrainOn is newDrainEnvWith on e's bucket: a second drain on the same
// prefix is another machine mirroring the same folder.
func newDrainOn(t *testing.T, e *synctest.Env, opts mirror.DrainOptions, wrap func(syncer.Remote) syncer.Remote, front func(endpoint string) string) *drainEnv {
	endpoint := e.Srv.Endpoint
	if front != nil {
		endpoint = front(endpoint)
	}
	p := synctest.NewProxy(t, endpoint)
	client, err := remote.New(context.Background(), remote.Config{EndpointURL: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	st := synctest.OpenState(t)
	j, c := st.Journal(), st.Cache()
	d := &drainEnv{Env: e, p: p, st: st, j: j, c: c, workdir: t.TempDir(), done: make(chan struct{})}
	if opts.WriterID == "" {
		// As a mount has: its own writes are told by it (state.State.WriterID).
		opts.WriterID = fmt.Sprintf("test-drain-%d", drainIDs.Add(1))
	}
	loc, _ := remote.ParseURL("s3://" + e.Bucket + "/w")
	var r syncer.Remote = client
	if wrap != nil {
		r = wrap(client)
	}
	dr := mirror.NewDrainer(r, j, c, st, d.workdir, loc, opts)
	d.dr, d.r, d.loc, d.opts = dr, r, loc, opts
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	done := d.done
	go func() { dr.Run(ctx); close(done) }()
	t.Cleanup(func() {
		d.cancel()
		<-d.done
		j.Close() // before openState's Close: cleanups run last first
	})
	return d
}

func (d *drainEnv) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.j.Sync(context.Background())
		if s, _ := d.j.Stats(); s.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			s, _ := d.j.Stats()
			t.Fatalf("journal did not drain: %+v state %+v", s, d.dr.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A rename of a file the bucket already holds is a server-side copy, not
// a second upload; with --delete the old key goes.
func TestDrainRenameIsServerSideCopy(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	testfs.WriteFile(t, d.workdir+"/dir/a.txt", strings.Repeat("a", 1000))
	d.j.Changed("dir/a.txt")
	d.waitIdle(t)

	os.Rename(d.workdir+"/dir", d.workdir+"/moved")
	d.j.Renamed("dir", "moved", true)
	testfs.WriteFile(t, d.workdir+"/b.txt", "b")
	d.j.Changed("b.txt")
	os.Rename(d.workdir+"/b.txt", d.workdir+"/c.txt")
	d.j.Renamed("b.txt", "c.txt", false)
	d.waitIdle(t)

	objs := d.Srv.Objects(t, d.Bucket, "w/")
	if len(objs) != 2 || objs["w/moved/a.txt"] != 1000 || objs["w/c.txt"] != 1 {
		t.Errorf("bucket after renames: %v", objs)
	}
	d.p.Mu.Lock()
	defer d.p.Mu.Unlock()
	if d.p.Puts["/"+d.Bucket+"/w/moved/a.txt"] != "copy" {
		t.Errorf("moved/a.txt was sent as %q, want a server-side copy", d.p.Puts["/"+d.Bucket+"/w/moved/a.txt"])
	}
}

// mkdir and the files then made in the directory, as the mount records
// them (the directory first): each file is sent once, not once for its own
// record and again by a walk of the new directory. A directory that
// replaces a file takes the file's object away (--delete).
func TestDrainNewDirectoryFilesSentOnce(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	testfs.WriteFile(t, d.workdir+"/x", "was a file")
	d.j.Changed("x")
	d.waitIdle(t)

	os.Remove(d.workdir + "/x")
	d.j.Removed("x", false)
	for _, dir := range []string{"d", "x"} {
		os.Mkdir(d.workdir+"/"+dir, 0o755)
		d.j.Changed(dir)
		for i := range 20 {
			name := fmt.Sprintf("%s/f%02d", dir, i)
			testfs.WriteFile(t, d.workdir+"/"+name, name)
			d.j.Changed(name)
		}
	}
	d.waitIdle(t)

	objs := d.Srv.Objects(t, d.Bucket, "w/")
	if len(objs) != 40 || objs["w/x"] != 0 {
		t.Errorf("bucket holds %d objects (want 40), w/x: %v", len(objs), objs["w/x"])
	}
	d.p.Mu.Lock()
	defer d.p.Mu.Unlock()
	if len(d.p.Nputs) < 40 {
		t.Fatalf("the proxy saw PUTs of %d keys, want at least the 40 files", len(d.p.Nputs))
	}
	for path, n := range d.p.Nputs {
		if n != 1 {
			t.Errorf("%s was sent %d times", path, n)
		}
	}
}

// A file still open for writing is not sent, however long ago its record
// was made, until it is closed, and it holds nothing else back.
func TestDrainWaitsForWriters(t *testing.T) {
	var writing atomic.Bool
	writing.Store(true)
	d := newDrainEnv(t, mirror.DrainOptions{Settle: 10 * time.Millisecond,
		Writing: func(p string) bool { return p == "open.bin" && writing.Load() }})
	testfs.WriteFile(t, d.workdir+"/open.bin", "half")
	d.j.Changed("open.bin")
	testfs.WriteFile(t, d.workdir+"/other.txt", "x")
	d.j.Changed("other.txt")
	deadline := time.Now().Add(10 * time.Second)
	for d.Srv.Objects(t, d.Bucket, "w/")["w/other.txt"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("other.txt was held back by a file open for writing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n, ok := d.Srv.Objects(t, d.Bucket, "w/")["w/open.bin"]; ok {
		t.Fatalf("open.bin was sent (%d bytes) while still open for writing", n)
	}
	testfs.WriteFile(t, d.workdir+"/open.bin", "whole file")
	writing.Store(false)
	d.dr.Kick()
	d.waitIdle(t)
	if n := d.Srv.Objects(t, d.Bucket, "w/")["w/open.bin"]; n != int64(len("whole file")) {
		t.Errorf("open.bin in the bucket: %d bytes, want %d", n, len("whole file"))
	}
}

// A file that never stops changing is still sent once its oldest change is
// MaxLag old, instead of waiting forever for the settle delay.
func TestDrainFileThatKeepsChanging(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Settle: 300 * time.Millisecond, MaxLag: 500 * time.Millisecond})
	path := filepath.Join(d.workdir, "app.log")
	deadline := time.Now().Add(5 * time.Second)
	sent := false
	for i := 0; time.Now().Before(deadline); i++ {
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		f.WriteString("a log line\n")
		f.Close()
		d.j.Changed("app.log")
		if _, ok := d.Srv.Objects(t, d.Bucket, "w/")["w/app.log"]; ok {
			sent = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sent {
		t.Error("a file appended to every 50ms was never sent")
	}
}

// A file that stays open for writing is not held back for ever: once its
// oldest unsent change is OpenFileLag old it is sent while still open (the
// mount keeps recording it while it changes).
func TestDrainSendsFileStillOpen(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Settle: 10 * time.Millisecond, OpenFileLag: 300 * time.Millisecond,
		Writing: func(p string) bool { return true }})
	testfs.WriteFile(t, d.workdir+"/job.out", "first hour of output")
	start := time.Now()
	d.j.Changed("job.out")
	d.waitIdle(t)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("sent after %v, before OpenFileLag", took)
	}
	if got, _ := d.Srv.Get(t, d.Bucket, "w/job.out"); got != "first hour of output" {
		t.Errorf("bucket holds %q", got)
	}
}
