// Package dirstat stats a directory's entries quickly: relative to the open
// directory (fstatat) and several at a time. The walker (internal/walk)
// uses it: at a million files a walk is one lstat per file.
package dirstat

import (
	"sync"
	"sync/atomic"
)

const (
	workers = 8 // more than cores: a cold inode is a disk read
	chunk   = 32
)

// Each calls fn(i) for every i in [0, n) and returns when all calls have
// returned. Above one chunk the calls run on a few goroutines, each call
// exactly once, so fn may write to the i-th element of a slice without a
// lock but must not touch anything the others share. The goroutines are
// the call's own, so a caller that stops early leaves nothing running.
func Each(n int, fn func(i int)) {
	if n <= chunk {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	take := func() (lo, hi int) {
		lo = int(next.Add(chunk)) - chunk
		return min(lo, n), min(lo+chunk, n)
	}
	for range min(workers, (n+chunk-1)/chunk) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo, hi := take(); lo < hi; lo, hi = take() {
				for i := lo; i < hi; i++ {
					fn(i)
				}
			}
		}()
	}
	wg.Wait()
}
