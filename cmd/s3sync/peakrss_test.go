package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
)

// A reconcile of many small files keeps a small peak RSS: its heap is a
// few MiB live, and neither GOGC=400 (five times that) nor a 1 MiB body
// buffer per transfer in flight may blow it up. At 10,000 empty files
// this run peaked at 183 MiB before either was bounded, 60 MiB after;
// make bench-scale measures it at a million (target ≤ 150 MiB).
func TestReconcilePeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 10,000 files")
	}
	srv := s3test.Get(t)
	b := srv.NewBucket(t)
	dir := t.TempDir()
	for d := range 10 {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 1000 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", f)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s3syncBin, "reconcile", "--only-show-errors", "--endpoint-url", srv.Endpoint, dir, "s3://"+b+"/data")
	cmd.Env = mergeEnv(os.Environ(), []string{"GOGC", "GOMEMLIMIT"})
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reconcile: %v\n%s", err, out)
	}
	if n := len(srv.Objects(t, b, "data/")); n != 10000 {
		t.Fatalf("the bucket holds %d objects, want 10000", n)
	}
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss >> 10 // KiB to MiB
	if peak > 120 {
		t.Errorf("reconcile of 10,000 small files peaked at %d MiB RSS; want at most 120", peak)
	}
	t.Logf("peak RSS %d MiB", peak)
}

// The heap's soft limit is its floor (memoryLimit, the mount's
// mountMemoryLimit) while little is live, and twice the live heap above half
// of it: a limit under the live heap would make the collector run without
// pause (a mount after a find over a million files holds a go-fuse node for
// each).
func TestHeapLimit(t *testing.T) {
	for _, tc := range []struct {
		floor int64
		live  uint64
		want  int64
	}{
		{memoryLimit, 0, memoryLimit},
		{memoryLimit, 30 << 20, memoryLimit},
		{memoryLimit, memoryLimit / 2, memoryLimit},
		{memoryLimit, 170 << 20, 340 << 20},
		{mountMemoryLimit, 20 << 20, mountMemoryLimit},
		{mountMemoryLimit, 50 << 20, 100 << 20},
	} {
		if got := heapLimit(tc.floor, tc.live); got != tc.want {
			t.Errorf("heapLimit(%d MiB, %d MiB) = %d MiB, want %d MiB", tc.floor>>20, tc.live>>20, got>>20, tc.want>>20)
		}
	}
}
