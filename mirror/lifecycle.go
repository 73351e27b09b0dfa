package mirror

import (
	"context"
	"time"
)

// Hooks are what the drain and the pull ask of the mount serving WORKDIR.
type Hooks struct {
	// Writing says whether a file is open for writing through the mount
	// (DrainOptions.Writing).
	Writing func(path string) bool
	// Mount is the mount the pull works beside (PullOptions.Mount).
	Mount PullMount
}

// Start starts the drain, and with Config.Pull the pull, in the
// background, until Stop.
func (m *Mirror) Start(h Hooks) {
	cfg := m.cfg
	d := NewDrainer(cfg.Remote, cfg.State.Journal(), cfg.State.Cache(), cfg.State, cfg.Workdir, cfg.Loc, DrainOptions{
		Delete: cfg.Delete, Filters: cfg.Filters, StorageClass: cfg.StorageClass,
		Settle: cfg.Settle, Concurrency: cfg.Concurrency, Log: cfg.Log,
		Writing: h.Writing, Conditions: m.conditions, WriterID: cfg.State.WriterID(),
		Hardlinks: m.links,
	})
	m.d.Store(d)
	drainCtx, stopDrain := context.WithCancel(context.Background())
	m.stop = stopDrain
	m.drained = make(chan struct{})
	go func() { d.Run(drainCtx); close(m.drained) }()
	m.pulled = make(chan struct{})
	if cfg.Pull > 0 {
		p := NewPuller(d, cfg.State.Journal(), PullOptions{Mount: h.Mount, MaxDelete: cfg.MaxDelete})
		go func() { p.Run(drainCtx, cfg.Pull); close(m.pulled) }()
		cfg.Log.Info("following the bucket", "every", cfg.Pull)
	} else {
		close(m.pulled)
	}
}

// Drainer is the running drain, nil before Start.
func (m *Mirror) Drainer() *Drainer { return m.d.Load() }

// WriterClosed tells the drain that a file was closed for good, so it may
// be sent now (see DrainOptions.Writing). Before Start it does nothing.
func (m *Mirror) WriterClosed() {
	if d := m.d.Load(); d != nil {
		d.WriterClosed()
	}
}

// Stop ends the drain and the pull, and waits for the work in flight.
func (m *Mirror) Stop() {
	if m.stop == nil {
		return
	}
	m.stop()
	<-m.drained
	<-m.pulled
}

// WaitDrained waits, at most timeout, until nothing is pending
// (--drain-on-exit); openForWriting is how many handles that may change
// their file are open through the mount.
func (m *Mirror) WaitDrained(timeout time.Duration, openForWriting func() int64) {
	j, log := m.cfg.State.Journal(), m.cfg.Log
	deadline := time.Now().Add(timeout)
	// A file closed just before the stop is recorded when the kernel's
	// RELEASE arrives, after close(2) returned: wait for those a moment
	// (not for a file a program keeps open: its change is recorded when
	// it is closed, and a later mount's scan finds it if it never is).
	for grace := time.Now().Add(min(releaseGrace, timeout)); openForWriting() > 0 && time.Now().Before(grace); {
		time.Sleep(10 * time.Millisecond)
	}
	// What was recorded a moment ago may still be queued for commit.
	if err := j.Sync(context.Background()); err != nil {
		log.Error("journal", "err", err)
	}
	for {
		s, err := j.Stats()
		if err != nil || s.Pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			log.Warn("--drain-timeout reached; unmounting with changes pending", "pending", s.Pending)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// releaseGrace is how long WaitDrained waits for files closed just before
// the stop to be recorded.
const releaseGrace = 2 * time.Second
