package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// heapProfileOnSignal writes a heap profile to path.1, path.2, … each time
// the process gets SIGUSR1, until stop is called: the moment a memory peak
// happens (a sampler watching /proc/PID/status) is rarely the exit. Only
// with S3SYNC_MEMPROFILE set, so SIGUSR1's default (exit) stays otherwise.
func heapProfileOnSignal(path string) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-sig:
			}
			writeHeapProfile(fmt.Sprintf("%s.%d", path, n))
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}
