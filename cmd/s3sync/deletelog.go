package main

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/s3sync/s3sync/remote"
)

// deleteCounter counts the objects the mount deletes, for the log: a
// deletion is the one change a person cannot take back from the bucket.
type deleteCounter struct {
	n atomic.Int64
}

// observe is remote.Config.ObserveTransfer: it counts the keys of each
// delete whose requests all went through.
func (d *deleteCounter) observe(t remote.Transfer) {
	if t.Op == remote.OpDelete && t.Err == nil {
		d.n.Add(int64(t.Keys - len(t.Failed)))
	}
}

// logEvery logs the deletions made since the last line, every interval
// while there are any, and once more when stop is closed.
func (d *deleteCounter) logEvery(interval time.Duration, log *slog.Logger, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var logged int64
	flush := func() {
		if n := d.n.Load(); n > logged {
			log.Info("deleted from the bucket", "objects", n-logged, "since start", n)
			logged = n
		}
	}
	for {
		select {
		case <-t.C:
			flush()
		case <-stop:
			flush()
			return
		}
	}
}
