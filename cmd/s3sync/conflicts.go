package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/remote"
)

// Other writers: what the store honours of conditional requests (probed
// once per mount, kept in the state) and the open conflicts, for status.

const metaConditions = "conditions"

// recordConditions returns what the store honours of conditional
// requests: probed once per remote (the probe writes and deletes a key
// under the prefix) and kept in the state with the remote it was learned
// from, so later mounts, and status, read it from there. Offline and never
// probed it returns nil (the drain then deletes one conditional request at
// a time).
func recordConditions(ctx context.Context, client *remote.Client, j *journal.Journal, loc remote.Location, online bool, log *slog.Logger) *remote.Conditions {
	where := client.Endpoint() + " " + loc.String()
	kept, keptWhere := storedConditionsFor(j)
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
	if b, err := json.Marshal(keptConditions{Remote: where, Conditions: got}); err == nil {
		j.SetMeta(metaConditions, b)
	}
	if !got.Put {
		log.Warn("this store ignores conditional uploads: an upload may replace another machine's newer version unnoticed", "bucket", loc.Bucket)
	}
	if !got.Delete && !got.BatchDelete {
		log.Warn("this store ignores conditional deletes: a delete may remove another machine's newer version", "bucket", loc.Bucket)
	}
	return &got
}

// keptConditions is the probe's answer as the state keeps it.
type keptConditions struct {
	Remote string `json:"remote"` // endpoint and URL probed
	remote.Conditions
}

func storedConditions(j *journal.Journal) *remote.Conditions {
	c, _ := storedConditionsFor(j)
	return c
}

func storedConditionsFor(j *journal.Journal) (*remote.Conditions, string) {
	b, err := j.Meta(metaConditions)
	if err != nil || len(b) == 0 {
		return nil, ""
	}
	var c keptConditions
	if json.Unmarshal(b, &c) != nil {
		return nil, ""
	}
	return &c.Conditions, c.Remote
}

const metaWriterID = "writer_id"

// writerID is the state's name in its objects' metadata
// (DrainOptions.WriterID): made once, kept in the journal meta.
func writerID(j *journal.Journal) string {
	if b, err := j.Meta(metaWriterID); err == nil && len(b) > 0 {
		return string(b)
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	if j.SetMeta(metaWriterID, []byte(id)) != nil {
		return "" // not kept: its own writes could not be told after a restart
	}
	return id
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
func addConflicts(rep *report, c *cache.Cache, j *journal.Journal) error {
	rep.Conflicts = []conflictEntry{}
	rep.Skipped = []skippedEntry{}
	rep.Conditions = storedConditions(j)
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
