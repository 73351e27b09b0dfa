// Package testenv holds what tests ask of the machine they run on. A test
// that cannot run here skips on a contributor's machine and fails under
// CI, where everything must run (.ci/run runs the tests as root, with
// FUSE); internal/testcheck also fails a CI run on any skip that slips
// through.
package testenv

import (
	"fmt"
	"os"
	"strings"
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
