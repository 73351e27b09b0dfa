package mirror

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// MountInfo names the mount a Report is about (cmd/s3sync keeps it in the
// state dir).
type MountInfo struct {
	Workdir    string
	Mountpoint string
	Remote     string
	PID        int
}

// Report is what `s3sync status` shows of a mount, mounted or not, and
// what its metrics count: read from the state and, while mounted, from the
// running drain. Its JSON is `s3sync status --json`'s output, one per
// state dir.
type Report struct {
	Workdir      string `json:"workdir"`
	Mountpoint   string `json:"mountpoint,omitempty"`
	Remote       string `json:"remote"`
	StateDir     string `json:"state_dir"`
	Mounted      bool   `json:"mounted"`
	PID          int    `json:"pid,omitempty"`
	Pending      int    `json:"pending"`
	PendingBytes int64  `json:"pending_bytes"`
	// PendingBytesPartial: only the first pendingStatLimit pending files
	// were measured, so PendingBytes is a lower bound.
	PendingBytesPartial bool          `json:"pending_bytes_partial,omitempty"`
	OldestPending       *time.Time    `json:"oldest_pending,omitempty"`
	OldestAgeSeconds    float64       `json:"oldest_pending_age_seconds"`
	InFlight            int           `json:"in_flight"`
	Failed              []FailedEntry `json:"failed"`
	Retrying            []FailedEntry `json:"retrying"`
	// KeepsChanging: files changed during every attempt to send them, on
	// a filesystem that cannot snapshot them; unsynced since Since.
	KeepsChanging []FailedEntry `json:"keeps_changing"`
	LastUpload    *time.Time    `json:"last_upload,omitempty"`
	Offline       bool          `json:"offline"`
	OfflineError  string        `json:"offline_error,omitempty"`
	// Paused says why the whole drain waits (unreachable, credentials,
	// clock, access denied everywhere); "" when it does not.
	Paused      string `json:"paused,omitempty"`
	PausedError string `json:"paused_error,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	// Versioning: whether the bucket keeps old versions ("off",
	// "enabled", "suspended", "unknown"), as learned at mount start-up.
	Versioning remote.Versioning `json:"versioning"`
	// RefusedDeletions: files the last mount's start-up scan found gone
	// from WORKDIR and did not delete from the bucket (--max-delete).
	RefusedDeletions *state.ScanRefusal `json:"refused_deletions,omitempty"`
	// Conflicts: paths another writer changed in the bucket since this
	// side last saw them (see conflict.go); Conditions: which
	// conditional requests the store honours, as probed at mount start.
	Conflicts []ConflictEntry `json:"conflicts"`
	// Skipped: FIFOs, sockets and device nodes in WORKDIR, which S3
	// cannot hold: not stored, and not failures (the first 100, and how
	// many there are).
	Skipped      []SkippedEntry     `json:"skipped"`
	SkippedCount int                `json:"skipped_count"`
	Conditions   *remote.Conditions `json:"conditional_requests,omitempty"`
	// CachedInodes: files and directories the kernel holds looked up
	// through the mount (see --max-cached-inodes); mounted only.
	CachedInodes int `json:"cached_inodes,omitempty"`
}

// SkippedEntry is one path S3 cannot hold.
type SkippedEntry struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
}

// FailedEntry is one change that failed, for good or for now.
type FailedEntry struct {
	Path     string    `json:"path"`
	Op       string    `json:"op"`
	Error    string    `json:"error"`
	Since    time.Time `json:"since"`
	Attempts int       `json:"attempts"`
}

// pendingStatLimit bounds the files status stats to size the pending
// bytes: scripts poll status while a mount drains a large burst, and a stat
// per pending file on every poll would take CPU from the drain itself.
const pendingStatLimit = 1000

// BuildReport reads the journal; live is the running mount's drain state
// (the zero State when it is not mounted).
func BuildReport(info MountInfo, st *state.State, mounted bool, live State) (Report, error) {
	j := st.Journal()
	rep := Report{Workdir: info.Workdir, Mountpoint: info.Mountpoint, Remote: info.Remote, Mounted: mounted,
		Offline: live.Offline, OfflineError: live.OfflineErr, Paused: live.Paused, PausedError: live.PausedErr, LastError: live.LastError, InFlight: live.InFlight,
		Failed: []FailedEntry{}, Retrying: []FailedEntry{}, KeepsChanging: []FailedEntry{}}
	rep.Versioning = st.Versioning()
	rep.RefusedDeletions = st.ScanRefusal()
	if mounted {
		rep.PID = info.PID
		// Changes recorded a moment ago may still be queued for the next
		// group commit; count them too.
		if err := j.Sync(context.Background()); err != nil {
			return rep, err
		}
	}
	var oldest time.Time
	statted := 0
	// In path order, not the queue's: a million pending took seconds to
	// walk in queue order (a lookup per record), and status is polled.
	err := j.EachPending(func(r journal.Record) bool {
		rep.Pending++
		switch {
		case r.Attempts > 0 && r.Err == syncer.ErrKeepsChanging.Error():
			if len(rep.KeepsChanging) < 100 {
				rep.KeepsChanging = append(rep.KeepsChanging, FailedEntry{Path: r.Path, Op: r.Op.String(), Error: r.Err, Since: r.First, Attempts: r.Attempts})
			}
		case r.Attempts > 0 && len(rep.Retrying) < 100:
			rep.Retrying = append(rep.Retrying, FailedEntry{Path: r.Path, Op: r.Op.String(), Error: r.Err, Since: r.ErrTime, Attempts: r.Attempts})
		}
		if oldest.IsZero() || r.First.Before(oldest) {
			oldest = r.First
		}
		if r.Op != journal.OpRemoved && !r.IsDir {
			if statted == pendingStatLimit {
				rep.PendingBytesPartial = true
			} else {
				statted++
				if st, err := os.Stat(filepath.Join(info.Workdir, filepath.FromSlash(r.Path))); err == nil && st.Mode().IsRegular() {
					rep.PendingBytes += st.Size()
				}
			}
		}
		return true
	})
	if err != nil {
		return rep, err
	}
	if !oldest.IsZero() {
		rep.OldestPending = &oldest
		rep.OldestAgeSeconds = time.Since(oldest).Seconds()
	}
	failed, err := j.Failed()
	if err != nil {
		return rep, err
	}
	for _, r := range failed {
		rep.Failed = append(rep.Failed, FailedEntry{Path: r.Path, Op: r.Op.String(), Error: r.Err, Since: r.ErrTime, Attempts: r.Attempts})
	}
	last := live.LastUpload
	if last.IsZero() {
		if b, err := j.Meta(MetaLastUpload); err == nil && len(b) > 0 {
			last, _ = time.Parse(time.RFC3339Nano, string(b))
		}
	}
	if !last.IsZero() {
		rep.LastUpload = &last
	}
	return rep, nil
}

// ConflictEntry is one open conflict.
type ConflictEntry struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "changed" or "deleted"
	// Copy is where this side's version went (a key below the prefix),
	// "" for "deleted".
	Copy       string    `json:"copy,omitempty"`
	RemoteETag string    `json:"remote_etag,omitempty"`
	Since      time.Time `json:"since"`
}

// AddConflicts fills the report's conflicts, skipped paths and
// conditional-request support from the state.
func AddConflicts(rep *Report, st *state.State) error {
	rep.Conflicts = []ConflictEntry{}
	rep.Skipped = []SkippedEntry{}
	rep.Conditions, _ = st.Conditions()
	c := st.Cache()
	err := c.Skipped(func(p, kind string) error {
		rep.SkippedCount++
		if len(rep.Skipped) < 100 {
			rep.Skipped = append(rep.Skipped, SkippedEntry{Path: p, Kind: kind})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.Conflicts(func(p string, cf cache.Conflict) error {
		kind := "changed"
		if cf.Kind == cache.ConflictDeleted {
			kind = "deleted"
		}
		rep.Conflicts = append(rep.Conflicts, ConflictEntry{Path: p, Kind: kind, Copy: cf.Copy, RemoteETag: cf.RemoteETag, Since: cf.Since})
		return nil
	})
}
