package fuse_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
)

// A program the server starts must not inherit /dev/fuse: if the server
// died while it ran, the connection would stay open and the mount hang
// instead of failing with ENOTCONN.
func TestDevFuseNotInherited(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("a direct mount needs root, and CI runs as root")
		}
		t.Skip("a direct mount needs root")
	}
	root, _ := loopback(t)
	mnt := t.TempDir()
	srv, err := fs.Mount(mnt, root, &fs.Options{MountOptions: fuse.MountOptions{DirectMountStrict: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()
	out, err := exec.Command("ls", "-l", "/proc/self/fd/").CombinedOutput()
	if err != nil {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "/dev/fuse") {
		t.Fatalf("a child process holds /dev/fuse:\n%s", out)
	}
}
