package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// Symlinks made through the mount are stored as links (rclone's
// NAME.rclonelink objects), never followed: `ln -s` to a folder outside
// WORKDIR holding a secret puts only the link's target in the bucket. rm
// and mv of links, and links made while unmounted, end with the bucket
// holding exactly WORKDIR, and `reconcile --links` restores the links.
func TestMountSymlinks(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--delete")
	m.start()
	outside := t.TempDir()
	testfs.WriteFile(t, outside+"/id_rsa", "SECRET KEY")
	mp := m.mountpoint
	testfs.WriteFile(t, mp+"/f.txt", "file")
	run(t, mp, "ln", "-s", outside, "home")
	run(t, mp, "ln", "-s", "f.txt", "rel")
	run(t, mp, "mkdir", "d")
	run(t, mp, "ln", "-s", "../f.txt", "d/up")
	m.waitDrained(60 * time.Second)
	bucketKeys(t, m, "after ln -s", "d/up.rclonelink", "f.txt", "home.rclonelink", "rel.rclonelink")
	if body, _ := srv.Get(t, bucket, "data/home.rclonelink"); body != outside {
		t.Errorf("home.rclonelink holds %q, want %q", body, outside)
	}
	m.bucketMatchesWorkdir()

	run(t, mp, "rm", "home")
	run(t, mp, "mv", "d", "e")
	m.waitDrained(60 * time.Second)
	bucketKeys(t, m, "after rm and mv", "e/up.rclonelink", "f.txt", "rel.rclonelink")
	m.bucketMatchesWorkdir()

	m.stop()
	must(t, os.Symlink("f.txt", m.workdir+"/offline"))
	must(t, os.Remove(m.workdir+"/rel"))
	m.start()
	m.waitDrained(60 * time.Second)
	bucketKeys(t, m, "after changes while unmounted", "e/up.rclonelink", "f.txt", "offline.rclonelink")
	m.bucketMatchesWorkdir()

	restore := t.TempDir()
	out, err := exec.Command(bin, "reconcile", "--links", "--endpoint-url", srv.Endpoint, m.url, restore).CombinedOutput()
	if err != nil {
		t.Fatalf("reconcile --links: %v\n%s", err, out)
	}
	for _, l := range []string{"offline", "e/up"} {
		want, _ := os.Readlink(filepath.Join(m.workdir, l))
		if got, err := os.Readlink(filepath.Join(restore, l)); err != nil || got != want {
			t.Errorf("restored %s: link to %q (%v), want %q", l, got, err, want)
		}
	}
}

func bucketKeys(t *testing.T, m *mount, what string, want ...string) {
	t.Helper()
	bucket := strings.Split(strings.TrimPrefix(m.url, "s3://"), "/")[0]
	var got []string
	for k := range m.srv.Objects(t, bucket, "data/") {
		got = append(got, strings.TrimPrefix(k, "data/"))
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: bucket holds %q, want %q", what, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
