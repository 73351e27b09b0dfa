package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// A chmod through the mount, and one made while unmounted, reach the
// bucket (an empty directory's on its marker); a restore with reconcile
// gives the modes back.
func TestMountModesReachBucketAndRestore(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket)
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/deploy.sh", "#!/bin/sh\necho deployed\n")
	testfs.WriteFile(t, m.mountpoint+"/id_ed25519", "key")
	if err := os.Mkdir(m.mountpoint+"/private", 0o755); err != nil {
		t.Fatal(err)
	}
	m.waitDrained(60 * time.Second)
	mode := func(key string) string {
		_, meta := srv.Get(t, bucket, "data/"+key)
		return meta["mode"]
	}
	if got := mode("deploy.sh"); got != "100644" {
		t.Fatalf("deploy.sh uploaded with mode %q, want 100644", got)
	}

	run(t, m.mountpoint, "chmod", "+x", "deploy.sh")
	m.waitFor("chmod +x to reach the bucket", 30*time.Second, func() bool { return mode("deploy.sh") == "100755" })
	run(t, m.mountpoint, "chmod", "700", "private")
	m.waitFor("chmod 700 of an empty directory to reach its marker", 30*time.Second, func() bool { return mode("private/") == "40700" })
	m.stop()

	if err := os.Chmod(m.workdir+"/id_ed25519", 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	m.waitFor("the offline chmod to reach the bucket", 30*time.Second, func() bool { return mode("id_ed25519") == "100600" })
	m.stop()

	restored := t.TempDir() + "/restored"
	out, err := exec.Command(bin, "reconcile", "--endpoint-url", srv.Endpoint, m.url, restored).CombinedOutput()
	if err != nil {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	for name, want := range map[string]uint32{"deploy.sh": 0o755, "id_ed25519": 0o600, "private": 0o700} {
		var st syscall.Stat_t
		if err := syscall.Stat(restored+"/"+name, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != want {
			t.Errorf("restored %s with mode %04o, want %04o", name, st.Mode&0o7777, want)
		}
	}
	if strings.Contains(string(out), "warning") {
		t.Errorf("reconcile warned: %s", out)
	}
}

// Empty directories survive a restore, tried as a user would: a git
// repository whose refs/heads is empty after `git gc` (without refs/ git
// does not see a repository at all) and a Maildir whose tmp/ is empty once
// mail moved to new/, then rmdir of cur/. The bucket matches WORKDIR
// (verify counts an empty directory without its marker as a difference),
// and a restore with reconcile is a working repository.
func TestMountEmptyDirectoriesSurviveRestore(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	mp := m.mountpoint
	git := func(dir string, args ...string) {
		t.Helper()
		run(t, dir, "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	}
	git(mp, "init", "-q", "repo")
	testfs.WriteFile(t, mp+"/repo/a.txt", "a\n")
	git(mp+"/repo", "add", "a.txt")
	git(mp+"/repo", "commit", "-q", "-m", "one")
	git(mp+"/repo", "gc", "-q")
	if ents, _ := os.ReadDir(mp + "/repo/.git/refs/heads"); len(ents) != 0 {
		t.Fatalf("git gc left refs/heads with %d entries; the test needs it empty", len(ents))
	}
	run(t, mp, "mkdir", "-p", "Maildir/new", "Maildir/cur", "Maildir/tmp")
	testfs.WriteFile(t, mp+"/Maildir/tmp/1.host", "mail\n")
	run(t, mp, "mv", "Maildir/tmp/1.host", "Maildir/new/1.host")
	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()

	run(t, mp, "rmdir", "Maildir/cur")
	m.waitDrained(60 * time.Second)
	m.bucketMatchesWorkdir()

	restore := filepath.Join(t.TempDir(), "restore")
	if out, err := exec.Command(bin, "reconcile", "--endpoint-url", srv.Endpoint, m.url, restore).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	git(restore+"/repo", "fsck", "--no-progress")
	if out, err := exec.Command("git", "-C", restore+"/repo", "log", "--format=%s").Output(); err != nil || string(out) != "one\n" {
		t.Errorf("git log in the restore: %q, %v", out, err)
	}
	for dir, want := range map[string]bool{"Maildir/tmp": true, "Maildir/new": true, "Maildir/cur": false} {
		if info, err := os.Stat(filepath.Join(restore, dir)); (err == nil && info.IsDir()) != want {
			t.Errorf("restore: %s exists = %v, want %v", dir, !want, want)
		}
	}
	// A second restore has nothing to do, and says nothing.
	out, err := exec.Command(bin, "reconcile", "--no-progress", "--endpoint-url", srv.Endpoint, m.url, restore).Output()
	if err != nil || len(out) != 0 {
		t.Errorf("second restore: %v, output %q", err, out)
	}
}
