package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// A mount's start-up, before WORKDIR is served: the bucket check and what
// it decides, what the state keeps of the store, a first mount's seeding,
// stale uploads, and the scan that records what changed while nothing was
// journaling.

// Store is what a mount asks of the store (remote.Client): syncer.Remote,
// and the start-up's checks.
type Store interface {
	syncer.Remote
	// CheckBucket tells whether the bucket can be used: nil, or why not
	// (remote.ErrUnreachable, a global refusal, a permanent error).
	CheckBucket(ctx context.Context, bucket string) error
	// BucketVersioning says whether the bucket keeps old versions.
	BucketVersioning(ctx context.Context, bucket string) (remote.Versioning, error)
	// ProbeConditions learns which conditional requests the store
	// honours, writing and deleting a key under prefix.
	ProbeConditions(ctx context.Context, bucket, prefix string) (remote.Conditions, error)
	// Endpoint names the store, part of the remote's identity.
	Endpoint() string
}

var _ Store = (*remote.Client)(nil)

// Config is a mount's remote, state and sync flags.
type Config struct {
	Remote Store
	// State is the mount's open state, claimed for Workdir and Loc.
	State   *state.State
	Workdir string // WORKDIR's real path
	Loc     remote.Location
	Log     *slog.Logger

	Delete       bool             // --delete
	MaxDelete    syncer.MaxDelete // --max-delete: the start-up scan's removals and a pull round's
	Filters      *syncer.Filters
	StorageClass string
	Settle       time.Duration
	Concurrency  int
	Pull         time.Duration // --pull's interval; 0: no pull
}

// Mirror is one mount's long-running side: Prepare runs its start-up
// steps, Start the drain (and the pull) once WORKDIR is served, Stop ends
// them.
type Mirror struct {
	cfg        Config
	conditions *remote.Conditions
	links      *Hardlinks

	d       atomic.Pointer[Drainer]
	stop    context.CancelFunc
	drained chan struct{}
	pulled  chan struct{}
}

// Prepare runs a mount's start-up steps, in order: it checks the bucket
// (an unreachable endpoint, refused credentials or a busy store mount
// offline, with a warning; a missing bucket or a denied access is returned
// as the store's error, for the user to act on), keeps the bucket's
// versioning and the store's conditional requests in the state, seeds an
// empty cache from the bucket, aborts multipart uploads whose file changed,
// and scans WORKDIR against the cache: what changed while nothing was
// journaling is recorded, removals only as --delete and --max-delete allow
// (a refusal is kept in the state for status), and failed records are
// retried. Once it returns, every change is in the journal.
//
// Its other errors are a scan that failed ("scan WORKDIR: …") and a
// journal that could not commit.
func Prepare(ctx context.Context, cfg Config) (*Mirror, error) {
	client, st, log, loc, workdir := cfg.Remote, cfg.State, cfg.Log, cfg.Loc, cfg.Workdir
	j, c := st.Journal(), st.Cache()
	checkCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := client.CheckBucket(checkCtx, loc.Bucket)
	cancel()
	online := err == nil
	switch {
	case err == nil:
	case errors.Is(err, remote.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded):
		log.Warn("endpoint unreachable; mounting offline, changes will be sent when it returns", "err", err)
	case remote.IsGlobal(err):
		// Expired or not yet available credentials, a wrong clock: the
		// mount serves and journals; the drain waits until requests work.
		log.Warn("the store refuses requests; mounting anyway, changes are kept and sent once it accepts them (s3sync status shows why)", "err", err)
	case !remote.IsPermanent(err):
		// A busy store (503 SlowDown) or a fault that retrying may cure:
		// nothing to refuse the mount for.
		log.Warn("the store did not answer the start-up check; mounting anyway, changes are kept and sent once it does", "err", err)
	default:
		return nil, err // no such bucket, access denied: the user must act
	}
	recordVersioning(ctx, client, st, loc.Bucket, online, log)
	m := &Mirror{cfg: cfg, links: NewHardlinks()}
	m.conditions = recordConditions(ctx, client, st, loc, online, log)

	if empty, err := c.Empty(); err == nil && empty && online {
		seeded, err := SeedCache(ctx, client, c, workdir, loc)
		if err != nil {
			log.Warn("could not read the bucket listing; every file will be checked by upload", "err", err)
		} else if seeded > 0 {
			log.Info("first mount: files already in the bucket will not be sent again", "files", seeded)
		}
	}
	if online {
		// Multipart uploads cut off by a crash continue if their file is
		// unchanged; the others would only cost storage.
		if _, err := AbortStaleUploads(ctx, client, c, workdir, loc, log); err != nil {
			log.Warn("could not abort unfinished uploads; they are tried again at the next mount", "err", err)
		}
	}
	// Whatever changed while nothing was journaling (unmounted, crashed)
	// is recorded again; removals only once counted (--max-delete).
	var rescanned int
	removals := NewRemovalScan(ctx, j, cfg.Delete, cfg.MaxDelete)
	links := m.links
	cached, err := c.ScanLinked(workdir, nil, func(p string) {
		rescanned++
		links.Changed(p)
		j.Changed(p)
		if rescanned%scanSyncEvery == 0 {
			// The scan finds changes far faster than the journal
			// commits them: without waiting now and then, a day of
			// changes made while unmounted queues in memory whole.
			j.Sync(ctx)
		}
	}, removals.Add, links.Note, func(p string, _ os.FileInfo) {
		// A FIFO, socket or device: the drain lists it as skipped (it
		// may have been made while unmounted, or just before a crash).
		j.Changed(p)
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", workdir, err)
	}
	// A file changed through one of its names changed under all of them.
	links.ChangedNames(j.Changed)
	recorded, refusal, err := removals.Finish(cached, func(removed func(string)) error {
		return c.Scan(workdir, nil, func(string) {}, removed)
	}, log)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", workdir, err)
	}
	rescanned += recorded
	RecordScanRefusal(st, refusal, log)
	if n, err := j.RetryFailed(); err == nil && n > 0 {
		log.Info("retrying changes that failed before", "count", n)
	}
	if err := j.Sync(ctx); err != nil {
		return nil, err
	}
	if rescanned > 0 {
		log.Info("found changes made while not mounted", "paths", rescanned)
	}
	return m, nil
}
