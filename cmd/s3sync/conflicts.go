package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

// Other writers: what the store honours of conditional requests (probed
// once per mount, kept in the state) and the open conflicts, for status.

// recordConditions returns what the store honours of conditional
// requests: probed once per remote (the probe writes and deletes a key
// under the prefix) and kept in the state with the remote it was learned
// from, so later mounts, and status, read it from there. Offline and never
// probed it returns nil (the drain then deletes one conditional request at
// a time).
func recordConditions(ctx context.Context, client *remote.Client, st *state.State, loc remote.Location, online bool, log *slog.Logger) *remote.Conditions {
	where := client.Endpoint() + " " + loc.String()
	kept, keptWhere := st.Conditions()
	if kept != nil && keptWhere == where || !online {
		return kept
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	got, err := client.ProbeConditions(pctx, loc.Bucket, loc.Prefix)
	cancel()
	if err != nil {
		log.Warn("could not learn which conditional requests the store honours; deletes are sent one at a time", "err", err)
		return kept
	}
	st.SetConditions(where, got) // not kept: probed again at the next mount
	if !got.Put {
		log.Warn("this store ignores conditional uploads: an upload may replace another machine's newer version unnoticed", "bucket", loc.Bucket)
	}
	if !got.Delete && !got.BatchDelete {
		log.Warn("this store ignores conditional deletes: a delete may remove another machine's newer version", "bucket", loc.Bucket)
	}
	return &got
}

// conflictEntry is one open conflict in status.
type conflictEntry struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "changed" or "deleted"
	// Copy is where this side's version went (a key below the prefix),
	// "" for "deleted".
	Copy       string    `json:"copy,omitempty"`
	RemoteETag string    `json:"remote_etag,omitempty"`
	Since      time.Time `json:"since"`
}

// addConflicts fills the report's conflicts and conditional-request
// support from the state.
func addConflicts(rep *report, st *state.State) error {
	rep.Conflicts = []conflictEntry{}
	rep.Skipped = []skippedEntry{}
	rep.Conditions, _ = st.Conditions()
	c := st.Cache()
	err := c.Skipped(func(p, kind string) error {
		rep.SkippedCount++
		if len(rep.Skipped) < 100 {
			rep.Skipped = append(rep.Skipped, skippedEntry{Path: p, Kind: kind})
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
		rep.Conflicts = append(rep.Conflicts, conflictEntry{Path: p, Kind: kind, Copy: cf.Copy, RemoteETag: cf.RemoteETag, Since: cf.Since})
		return nil
	})
}

func printConflicts(r report) {
	if c := r.Conditions; c != nil && !c.Delete && !c.BatchDelete {
		fmt.Printf("  conditional deletes: not supported by this store; a delete may remove another machine's newer version\n")
	}
	if c := r.Conditions; c != nil && !c.Put {
		fmt.Printf("  conditional uploads: not supported by this store; an upload may replace another machine's newer version\n")
	}
	if len(r.Conflicts) == 0 {
		return
	}
	fmt.Printf("  conflicts:   %d (another writer changed these in the bucket; both versions kept)\n", len(r.Conflicts))
	for _, cf := range r.Conflicts {
		if cf.Kind == "deleted" {
			fmt.Printf("    %s: deleted here, changed there; the bucket keeps the other version\n", shown(cf.Path))
			continue
		}
		fmt.Printf("    %s: changed here and there; this side's version is %s\n", shown(cf.Path), shown(cf.Copy))
	}
}
