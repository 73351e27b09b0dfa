package mirror_test

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// slowRemote holds server-side copies before they reach the store (when
// hold is set, until it is closed), as a slow or congested connection
// would, and logs the order in which requests start and end.
type slowRemote struct {
	syncer.Remote
	hold chan struct{}

	mu  sync.Mutex
	log []string
}

// overtakeWindow is how long copies are held for a PUT that must not
// overtake them to show up. The settle delay is 10 ms and the drain starts
// a ready record within milliseconds, so without the ordering the PUT
// starts long before this ends, even on a loaded machine; a machine slower
// still would make the test pass without proving anything, never fail
// wrongly.
const overtakeWindow = 2 * time.Second

// releaseCopies lets the held copies go once every one of puts has started
// (the ordering is broken: the test will say so) or overtakeWindow has
// passed without them.
func (s *slowRemote) releaseCopies(puts ...string) {
	deadline := time.Now().Add(overtakeWindow)
	for time.Now().Before(deadline) {
		all := true
		for _, p := range puts {
			all = all && s.index("put start "+p) >= 0
		}
		if all {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(s.hold)
}

func (s *slowRemote) note(what string) {
	s.mu.Lock()
	s.log = append(s.log, what)
	s.mu.Unlock()
}

func (s *slowRemote) Copy(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, size int64, o remote.PutOptions) (string, error) {
	s.note("copy start " + srcKey)
	s.mu.Lock()
	hold := s.hold
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	etag, err := s.Remote.Copy(ctx, srcBucket, srcKey, dstBucket, dstKey, size, o)
	s.note("copy end " + srcKey)
	return etag, err
}

func (s *slowRemote) Upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o remote.PutOptions) (remote.Uploaded, error) {
	s.note("put start " + key)
	return s.Remote.Upload(ctx, bucket, key, r, size, o)
}

func (s *slowRemote) Delete(ctx context.Context, bucket string, keys []string) ([]remote.DeleteError, error) {
	for _, k := range keys {
		s.note("delete start " + k)
	}
	return s.Remote.Delete(ctx, bucket, keys)
}

// index is where what first appears in the log, -1 if never.
func (s *slowRemote) index(what string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.log {
		if l == what {
			return i
		}
	}
	return -1
}

// The bug this guards: rename f → g became a server-side copy that ran
// after f had been written again, so g in the bucket got the new f. With
// the copy held on its way to the store, the new f's upload must not
// overtake it, for a file and for a file inside a renamed directory.
func TestDrainRenameCopyNotOvertaken(t *testing.T) {
	var sr *slowRemote
	d := newDrainEnvWith(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond}, func(r syncer.Remote) syncer.Remote {
		sr = &slowRemote{Remote: r}
		return sr
	}, nil)
	old := strings.Repeat("old", 100)
	testfs.WriteFile(t, d.workdir+"/f", old)
	testfs.WriteFile(t, d.workdir+"/dir/x", old)
	d.j.Changed("f")
	d.j.Changed("dir/x")
	d.waitIdle(t)
	sr.mu.Lock()
	sr.log = nil
	sr.hold = make(chan struct{})
	sr.mu.Unlock()

	os.Rename(d.workdir+"/f", d.workdir+"/g")
	d.j.Renamed("f", "g", false)
	testfs.WriteFile(t, d.workdir+"/f", "new f")
	d.j.Changed("f")
	os.Rename(d.workdir+"/dir", d.workdir+"/moved")
	d.j.Renamed("dir", "moved", true)
	testfs.WriteFile(t, d.workdir+"/dir/x", "new dir/x")
	d.j.Changed("dir")
	d.j.Changed("dir/x")
	sr.releaseCopies("w/f", "w/dir/x")
	d.waitIdle(t)

	for key, want := range map[string]string{"w/g": old, "w/moved/x": old, "w/f": "new f", "w/dir/x": "new dir/x"} {
		if got, _ := d.Srv.Get(t, d.Bucket, key); got != want {
			t.Errorf("%s holds %q, want %q", key, got, want)
		}
	}
	for _, src := range []string{"w/f", "w/dir/x"} {
		end, put := sr.index("copy end "+src), sr.index("put start "+src)
		if end < 0 || put < end {
			t.Errorf("the PUT of %s (log position %d) overtook the copy from it (ended at %d): %q", src, put, end, sr.log)
		}
	}
}

// After a crash between an upload and its cache entry's commit, the cache
// still holds the old ETag while the bucket holds new bytes under the old
// name: the rename's copy must be refused (copy-source-if-match) and the
// file uploaded from WORKDIR instead.
func TestDrainRenameCopyIsConditional(t *testing.T) {
	d := newDrainEnv(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond})
	old := strings.Repeat("o", 500)
	testfs.WriteFile(t, d.workdir+"/f", old)
	d.j.Changed("f")
	d.waitIdle(t)
	// The new f reached the bucket, but its cache entry was lost.
	d.Srv.Put(t, d.Bucket, "w/f", strings.Repeat("N", 500), nil)

	os.Rename(d.workdir+"/f", d.workdir+"/g")
	d.j.Renamed("f", "g", false)
	d.waitIdle(t)
	if got, _ := d.Srv.Get(t, d.Bucket, "w/g"); got != old {
		t.Errorf("g holds %.20q…, want the renamed file's own bytes %.20q…", got, old)
	}
	d.p.Mu.Lock()
	defer d.p.Mu.Unlock()
	if kind := d.p.Puts["/"+d.Bucket+"/w/g"]; kind != "put" {
		t.Errorf("g was last sent as %q, want an upload after the refused copy", kind)
	}
}

// A file changed inside a directory just renamed: the tree's copy of its
// old content and the upload of the new one write the same key, so the
// upload must wait for the copy, or the copy, landing last, would leave
// the old bytes.
func TestDrainTreeCopyNotOvertakenByChange(t *testing.T) {
	sr := &slowRemote{}
	d := newDrainEnvWith(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond}, func(r syncer.Remote) syncer.Remote {
		sr.Remote = r
		return sr
	}, nil)
	testfs.WriteFile(t, d.workdir+"/dir/x", "old")
	d.j.Changed("dir/x")
	d.waitIdle(t)

	sr.mu.Lock()
	sr.hold = make(chan struct{})
	sr.mu.Unlock()
	os.Rename(d.workdir+"/dir", d.workdir+"/moved")
	d.j.Renamed("dir", "moved", true)
	d.j.Sync(context.Background())
	d.waitState(t, "the tree's copy to be on its way", func(mirror.State) bool { return sr.index("copy start w/dir/x") >= 0 })
	testfs.WriteFile(t, d.workdir+"/moved/x", "new")
	d.j.Changed("moved/x")
	sr.releaseCopies("w/moved/x")
	d.waitIdle(t)
	if got, _ := d.Srv.Get(t, d.Bucket, "w/moved/x"); got != "new" {
		t.Errorf("moved/x holds %q, want the new content", got)
	}
}

// A copy the store carried out while the client was told it failed (the
// answer lost on the way) leaves an object the cache never learns of: when
// the renamed file is then removed, its key must be deleted all the same.
func TestDrainCopyInDoubtIsDeleted(t *testing.T) {
	d, proxy := newDrainBehindFaults(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond, MaxBackoff: 300 * time.Millisecond})
	testfs.WriteFile(t, d.workdir+"/f", "content")
	d.j.Changed("f")
	d.waitIdle(t)

	proxy.SetRules(faultproxy.Rule{Kind: faultproxy.DropAfter, Match: faultproxy.IsCopy})
	os.Rename(d.workdir+"/f", d.workdir+"/g")
	d.j.Renamed("f", "g", false)
	// Until the drain gave the copy up (the SDK's own retries included).
	d.waitState(t, "the copy to fail", func(s mirror.State) bool { return strings.Contains(s.LastError, "copy") })
	if _, ok := d.Srv.Objects(t, d.Bucket, "w/")["w/g"]; !ok {
		t.Fatal("the store did not carry out the copy; the test proves nothing")
	}
	os.Remove(d.workdir + "/g")
	d.j.Removed("g", false)
	proxy.SetRules()
	d.waitIdle(t)
	if objs := d.Srv.Objects(t, d.Bucket, "w/"); len(objs) != 0 {
		t.Errorf("objects left after the file was renamed and removed: %v", objs)
	}
}
