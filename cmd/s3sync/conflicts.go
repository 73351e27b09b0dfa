package main

import (
	"fmt"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/state"
)

// Other writers: what the store honours of conditional requests (probed
// once per mount, kept in the state) and the open conflicts, for status.

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
