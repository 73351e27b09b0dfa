package remote

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// Reconcile of a million small files keeps DefaultConcurrency (32) uploads
// in flight; their bodies must not each hold a 1 MiB buffer, or the peak
// RSS of the run is over 150 MiB (make bench-scale).
func TestSmallBodiesHoldLittleMemory(t *testing.T) {
	const inFlight, size = 32, 4096
	file := bytes.NewReader(bytes.Repeat([]byte("x"), size))
	runtime.GC()
	runtime.GC() // empties the buffer pools, which earlier tests filled
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var dones []func()
	for range inFlight {
		_, _, done, err := readBody(context.Background(), file, 0, size, false)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	runtime.ReadMemStats(&after)
	for _, done := range dones {
		done()
	}
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 8<<20 {
		t.Errorf("%d bodies of %d bytes in flight allocated %d MiB; want under 8", inFlight, size, grew>>20)
	}
}
