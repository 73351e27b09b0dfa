package mirror

import (
	"time"
)

// workerPool runs functions on goroutines that are kept for reuse while
// work keeps coming. A fresh goroutine per upload would grow its stack
// through the SDK's deep middleware chain every time (stack copies were a
// sixth of the drain loop's CPU); a reused one already has the stack.
//
// The number of goroutines is not capped here: the caller bounds the work
// it starts. A goroutine idle for idleTimeout exits.
type workerPool struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle worker
}

const idleTimeout = 5 * time.Second

func newWorkerPool() workerPool { return workerPool{jobs: make(chan func())} }

func (p *workerPool) run(fn func()) {
	select {
	case p.jobs <- fn:
	default:
		go p.work(fn)
	}
}

func (p *workerPool) work(fn func()) {
	_ = growStack()
	timer := time.NewTimer(idleTimeout)
	defer timer.Stop()
	for {
		fn()
		timer.Reset(idleTimeout)
		select {
		case fn = <-p.jobs:
		case <-timer.C:
			return
		}
	}
}

// growStack grows the calling goroutine's stack once, up front, to about
// what a request through the SDK needs, instead of doubling it step by step
// in the middle of the first requests.
//
//go:noinline
func growStack() byte {
	var buf [64 << 10]byte
	buf[stackIndex] = 1 // an index the compiler cannot know keeps buf real
	return buf[stackIndex]
}

var stackIndex = 0
