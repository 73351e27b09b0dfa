package e2e

import (
	"os"
	"os/exec"
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
