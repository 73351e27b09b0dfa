package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/s3sync/s3sync/journal"
)

// metaScanRefusal is the journal meta key holding the deletions the last
// mount's start-up scan refused (--max-delete), so that status shows them,
// mounted or not, and not only the log of that mount.
const metaScanRefusal = "scan_refused_deletions"

// scanRefusal: files gone from WORKDIR while it was not mounted that the
// bucket keeps, because deleting them was over --max-delete.
type scanRefusal struct {
	Files int       `json:"files"` // gone from WORKDIR, kept in the bucket
	Of    int       `json:"of"`    // files the bucket held for WORKDIR
	Limit string    `json:"limit"` // the limit that refused, as a flag
	Allow string    `json:"allow"` // the flag that allows deleting them
	At    time.Time `json:"at"`    // the start-up that refused
}

// recordScanRefusal keeps r in the state; nil clears what an earlier mount
// kept, since every start-up scan decides afresh (the files are back, were
// deleted, or the mount runs without --delete and keeps them by design).
func recordScanRefusal(j *journal.Journal, r *scanRefusal, log *slog.Logger) {
	b := []byte("{}")
	if r != nil {
		var err error
		if b, err = json.Marshal(r); err != nil {
			return
		}
	}
	if err := j.SetMeta(metaScanRefusal, b); err != nil {
		log.Warn("could not keep the refused deletions in the state; only this log tells of them", "err", err)
	}
}

// storedScanRefusal is what recordScanRefusal kept; nil when nothing was
// refused.
func storedScanRefusal(j *journal.Journal) *scanRefusal {
	b, err := j.Meta(metaScanRefusal)
	if err != nil || len(b) == 0 {
		return nil
	}
	var r scanRefusal
	if json.Unmarshal(b, &r) != nil || r.Files == 0 {
		return nil
	}
	return &r
}

// scanRefusalLine is status's line for r.
func scanRefusalLine(r *scanRefusal) string {
	are := "are"
	if r.Files == 1 {
		are = "is"
	}
	return fmt.Sprintf("%s gone from WORKDIR while it was not mounted %s still in the bucket, over %s; to delete them from the bucket too, mount again with %s",
		humanCount(int64(r.Files), "file", "files"), are, r.Limit, r.Allow)
}
