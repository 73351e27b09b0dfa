// Package testenv holds what tests ask of the machine they run on. A test
// that cannot run here skips on a contributor's machine and fails under
// CI, where everything must run (.ci/run runs the tests as root, with
// FUSE); internal/testcheck also fails a CI run on any skip that slips
// through.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// CI reports whether the tests run under CI: CI set to anything but "",
// "0" or "false", as internal/testcheck reads it.
func CI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

// CannotRun ends a test that cannot run on this machine: t.Skip, or
// t.Fatal under CI.
func CannotRun(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("cannot run, and under CI every test must: %s", msg)
	}
	t.Skip(msg)
}

// NeedRoot ends the test unless it runs as root; why says what needs it.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		CannotRun(t, "needs root: %s", why)
	}
}

// RunAsNobody re-runs the named tests of this test binary as uid/gid
// 65534, for checks that root's privileges would make pass vacuously; the
// test fails unless they pass there.
func RunAsNobody(t *testing.T, pattern string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "s3sync-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run="+pattern, "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR=/tmp", "HOME=/tmp")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}
