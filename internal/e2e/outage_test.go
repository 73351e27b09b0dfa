package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// The server goes away for a minute during edits: the mount stays usable,
// status says so, and everything is sent once the server is back.
func TestMountServerOutage(t *testing.T) {
	srv := s3test.Get(t)
	if os.Getenv("S3SYNC_TEST_ENDPOINT") != "" {
		t.Skip("cannot stop an external server")
	}
	outage := time.Minute
	if testing.Short() {
		outage = 10 * time.Second
	}
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/before.txt", "before")
	testfs.WriteFile(t, m.mountpoint+"/edit.txt", "v1")
	m.waitDrained(60 * time.Second)

	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	down := time.Now()
	run(t, m.mountpoint, "mv", "before.txt", "renamed-offline.txt")
	m.waitFor("status to report the outage", 60*time.Second, func() bool {
		r := m.status()
		return r.Offline && r.Pending > 0
	})
	// Keep working while the server is away: every edit must go through.
	for i := 0; time.Since(down) < outage; i++ {
		testfs.WriteFile(t, fmt.Sprintf("%s/offline/f%03d", m.mountpoint, i), fmt.Sprintf("written while offline %d", i))
		testfs.WriteFile(t, m.mountpoint+"/edit.txt", fmt.Sprintf("v%d", i+2))
		if i%10 == 5 {
			os.Remove(fmt.Sprintf("%s/offline/f%03d", m.mountpoint, i-3))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := m.status(); !r.Offline || r.Pending == 0 {
		t.Errorf("status during the outage: %+v", r)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	r := m.waitDrained(120 * time.Second)
	if r.Offline || len(r.Failed) > 0 {
		t.Errorf("after the outage: %+v", r)
	}
	m.bucketMatchesWorkdir()
}

// A file that cannot be stored is kept in the failed list with its
// reason, visible in status, while everything else goes on.
func TestMountFailedListIsVisible(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t))
	m.start()
	// Four folders of 250 bytes hold their markers (1,009-byte keys);
	// the file's key below them is over S3's 1,024.
	dir := m.mountpoint
	for _, c := range "abcd" {
		dir = filepath.Join(dir, strings.Repeat(string(c), 250))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("l", 40)
	testfs.WriteFile(t, filepath.Join(dir, long), "too deep")
	testfs.WriteFile(t, m.mountpoint+"/fine.txt", "ok")
	var r statusReport
	m.waitFor("the long key in the failed list", 60*time.Second, func() bool {
		r = m.status()
		return len(r.Failed) == 1 && r.Pending == 0
	})
	if !strings.HasSuffix(r.Failed[0].Path, "/"+long) || !strings.Contains(r.Failed[0].Error, "1024") {
		t.Errorf("failed entry: %+v", r.Failed[0])
	}
	out, err := exec.Command(bin, "status", "--state-dir", m.stateDir, m.workdir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), long) {
		t.Errorf("human status does not show the failure: %v\n%s", err, out)
	}
	m.stop()
	// Still visible while unmounted.
	out, _ = exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	if !bytes.Contains(out, []byte(long)) || !bytes.Contains(out, []byte(`"mounted": false`)) {
		t.Errorf("unmounted status lost the failure: %s", out)
	}
}

// A store answering 503 to everything when the mount starts (busy, or
// restarting) is no reason to refuse the mount: it comes up, keeps the
// changes, and sends them once the store answers again.
func TestMountStartsWhileStoreBusy(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	proxy, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	proxy.SetRules(faultproxy.Rule{Kind: faultproxy.Error503})
	m := newMountVia(t, bucket, proxy.URL(), "--delete")
	m.start()
	testfs.WriteFile(t, filepath.Join(m.mountpoint, "notes.txt"), "written while the store was busy")
	if st := m.status(); st.Pending == 0 {
		t.Fatalf("the change was not kept: %+v", st)
	}
	proxy.SetRules()
	m.waitSettled(2 * time.Minute)
	m.bucketMatchesWorkdir()
}
