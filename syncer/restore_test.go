package syncer_test

import (
	"context"
	"github.com/s3sync/s3sync/internal/confine"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/syncer"
)

// statMode is path's st_mode permission bits (07777) and owner.
func statMode(t *testing.T, path string) (mode, uid, gid uint32) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777, st.Uid, st.Gid
}

// A download restores the permission bits of x-amz-meta-mode, as rclone
// writes it; setuid, setgid, sticky and the owner only when asked (the
// owner as root). Metadata that is malformed is a warning, never a
// failure, and the file keeps the default mode.
func TestDownloadRestoresMode(t *testing.T) {
	e := synctest.NewEnv(t)
	ctx := context.Background()
	// Objects as another tool (rclone, s3fs, a person) wrote them.
	put := func(key string, meta map[string]string) {
		e.Srv.Put(t, e.Bucket, key, "#!/bin/sh\n", meta)
	}
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	def := uint32(0o644 &^ umask)
	root := os.Geteuid() == 0
	cases := []struct {
		name       string
		meta       map[string]string
		restore    syncer.Restore
		mode       uint32
		uid, gid   uint32 // when owner is set
		owner      bool
		warnings   int
		onlyAsRoot bool
	}{
		{name: "script", meta: map[string]string{"mode": "100755", "uid": "1234", "gid": "5678"}, mode: 0o755},
		{name: "private", meta: map[string]string{"mode": "100600"}, mode: 0o600},
		{name: "no metadata", mode: def},
		{name: "setuid stripped", meta: map[string]string{"mode": "104755"}, mode: 0o755, warnings: 1},
		{name: "setuid restored", meta: map[string]string{"mode": "106755"}, restore: syncer.Restore{Special: true}, mode: 0o6755},
		{name: "sticky restored", meta: map[string]string{"mode": "1777"}, restore: syncer.Restore{Special: true}, mode: 0o1777},
		{name: "owner restored", meta: map[string]string{"mode": "104750", "uid": "1234", "gid": "5678"}, restore: syncer.Restore{Special: true, Owner: true},
			mode: 0o4750, owner: true, uid: 1234, gid: 5678, onlyAsRoot: true},
		{name: "s3fs decimal mode", meta: map[string]string{"mode": "33261"}, mode: def, warnings: 1},
		{name: "directory mode", meta: map[string]string{"mode": "40755"}, mode: def, warnings: 1},
		{name: "bad ids", meta: map[string]string{"mode": "100700", "uid": "alice", "gid": "-5"}, restore: syncer.Restore{Owner: true}, mode: 0o700, warnings: 1},
	}
	dir := t.TempDir()
	droot, err := confine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer droot.Close()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.onlyAsRoot && !root {
				testenv.NeedRoot(t, "restoring an owner")
			}
			key := strings.ReplaceAll(c.name, " ", "-")
			put(key, c.meta)
			var warnings []error
			c.restore.Warn = func(err error) { warnings = append(warnings, err) }
			path := filepath.Join(dir, key)
			if _, err := syncer.DownloadFile(ctx, e.Client, e.Bucket, key, "", droot, key, c.restore); err != nil {
				t.Fatal(err)
			}
			mode, uid, gid := statMode(t, path)
			if mode != c.mode {
				t.Errorf("mode %04o, want %04o", mode, c.mode)
			}
			if c.owner && (uid != c.uid || gid != c.gid) {
				t.Errorf("owner %d:%d, want %d:%d", uid, gid, c.uid, c.gid)
			}
			if !c.owner && uid != uint32(os.Geteuid()) {
				t.Errorf("owner %d restored without being asked", uid)
			}
			if len(warnings) != c.warnings {
				t.Errorf("warnings %q, want %d", warnings, c.warnings)
			}
		})
	}
}

// An upload and a download round trip keeps each file's permission bits;
// with --metadata as root, setuid and the owner as well. A download of a
// file whose only change is its mode is not sent again (aws s3 sync
// compares size and time only).
func TestReconcileRoundTripKeepsModes(t *testing.T) {
	e := synctest.NewEnv(t)
	src := t.TempDir()
	files := map[string]uint32{"bin/run.sh": 0o755, "secret.key": 0o600, "shared/notes.txt": 0o664, "bin/su-helper": 0o4755}
	for name, mode := range files {
		testfs.WriteFile(t, src+"/"+name, name)
		if err := syscall.Chmod(src+"/"+name, mode); err != nil {
			t.Fatal(err)
		}
	}
	root := os.Geteuid() == 0
	if root {
		if err := os.Chown(src+"/secret.key", 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	url := "s3://" + e.Bucket + "/tree"
	if sum, lines := e.Sync(src, url, nil); sum.Uploaded != 4 {
		t.Fatalf("upload: %+v %q", sum, lines)
	}
	_, meta := e.Srv.Get(t, e.Bucket, "tree/bin/run.sh")
	if meta["mode"] != "100755" || meta["uid"] == "" || meta["gid"] == "" {
		t.Errorf("uploaded metadata: %v", meta)
	}

	plain := t.TempDir() + "/plain"
	e.Sync(url, plain, nil)
	for name, mode := range files {
		if got, _, _ := statMode(t, plain+"/"+name); got != mode&0o777 {
			t.Errorf("%s: downloaded with %04o, want %04o", name, got, mode&0o777)
		}
	}

	var mu sync.Mutex
	var warnings []string
	full := t.TempDir() + "/full"
	e.Sync(url, full, func(o *syncer.Options) {
		o.Restore = syncer.Restore{Special: true, Owner: root}
		report := o.Report
		o.Report = func(ev syncer.Event) {
			if ev.Kind == syncer.EventWarning {
				mu.Lock()
				warnings = append(warnings, ev.Err.Error())
				mu.Unlock()
			}
			report(ev)
		}
	})
	for name, mode := range files {
		if got, _, _ := statMode(t, full+"/"+name); got != mode {
			t.Errorf("%s: downloaded with --metadata as %04o, want %04o", name, got, mode)
		}
	}
	if root {
		if _, uid, gid := statMode(t, full+"/secret.key"); uid != 1234 || gid != 5678 {
			t.Errorf("secret.key: owner %d:%d, want 1234:5678", uid, gid)
		}
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %q", warnings)
	}

	if err := os.Chmod(src+"/secret.key", 0o640); err != nil {
		t.Fatal(err)
	}
	if _, lines := e.Sync(src, url, nil); len(lines) != 0 {
		t.Errorf("a chmod alone was sent by reconcile (aws s3 sync compares size and time): %q", lines)
	}
}
