package main

import (
	"sync/atomic"
	"testing"
	"time"
)

// The watchdog asks a child process whether the mount answers, never the
// server itself; one hung probe blocks the next instead of piling up.
func TestWatchdogProbe(t *testing.T) {
	var probing atomic.Bool
	if !mountAnswers(t.TempDir(), 30*time.Second, &probing) {
		t.Fatal("a directory that answers statfs: probe says no")
	}
	if mountAnswers("/nonexistent/s3sync-probe", 30*time.Second, &probing) {
		t.Fatal("a path statfs fails on: probe says yes")
	}
	probing.Store(true) // an earlier probe still hanging
	if mountAnswers(t.TempDir(), 30*time.Second, &probing) {
		t.Fatal("a probe started while another one hangs")
	}
}
