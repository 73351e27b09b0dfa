package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
)

// With --allow-other, another user works in the mount as on a local disk:
// what they create is theirs in WORKDIR and reaches the bucket with their
// uid and gid; root's private files stay closed to them.
func TestMountAllowOther(t *testing.T) {
	testenv.NeedRoot(t, "acting as another user")
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--allow-other")
	// t.TempDir and its parent are 0700: open the way to the mountpoint.
	for _, d := range []string{filepath.Dir(filepath.Dir(m.mountpoint)), filepath.Dir(m.mountpoint)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m.start()
	if err := os.Mkdir(m.mountpoint+"/shared", 0o777); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(m.mountpoint+"/shared", 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.mountpoint+"/private", []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}

	nobody := func(script string) error {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir = m.mountpoint
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("as nobody: %s: %v: %s", script, err, out)
		}
		return err
	}
	if err := nobody("echo notes > shared/notes.txt && mkdir shared/dir && ln -s notes.txt shared/link"); err != nil {
		t.Fatal("nobody could not create in a 1777 directory through the mount")
	}
	if nobody("cat private") == nil {
		t.Error("nobody read a 0600 file of root's through the mount")
	}
	if nobody("echo x > mine.txt") == nil {
		t.Error("nobody created a file in root's 0755 directory through the mount")
	}
	for _, rel := range []string{"shared/notes.txt", "shared/dir", "shared/link"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(m.workdir+"/"+rel, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 65534 || st.Gid != 65534 {
			t.Errorf("%s in WORKDIR is owned by %d:%d, want nobody's 65534:65534", rel, st.Uid, st.Gid)
		}
	}

	m.waitDrained(60 * time.Second)
	_, meta := srv.Get(t, bucket, "data/shared/notes.txt")
	if meta["uid"] != "65534" || meta["gid"] != "65534" {
		t.Errorf("shared/notes.txt reached the bucket with uid %q gid %q, want 65534 65534", meta["uid"], meta["gid"])
	}
	_, meta = srv.Get(t, bucket, "data/shared/dir/")
	if meta["uid"] != "65534" {
		t.Errorf("the marker of the empty directory shared/dir has uid %q, want 65534", meta["uid"])
	}
	m.bucketMatchesWorkdir()
}
