package mirror

import (
	"context"
	"log/slog"
	"time"

	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

// What a mount learns of the store at start-up and keeps in the state, for
// the drain and for status: whether the bucket keeps old versions, and
// which conditional requests the store honours.

// recordVersioning asks the store whether the bucket keeps old versions
// and keeps the answer in the state. Not knowing is no reason to refuse a
// mount: the state then says unknown.
func recordVersioning(ctx context.Context, client Store, st *state.State, bucket string, online bool, log *slog.Logger) {
	v := remote.VersioningUnknown
	if online {
		qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		got, err := client.BucketVersioning(qctx, bucket)
		cancel()
		if err != nil {
			log.Warn("could not learn whether the bucket keeps old versions; status shows versioning unknown", "err", err)
		}
		v = got
	}
	if v == remote.VersioningOff || v == remote.VersioningSuspended {
		log.Info("bucket versioning is "+string(v)+": deletes and overwrites in the bucket cannot be undone; `s3sync mb --versioning` turns it on", "bucket", bucket)
	}
	if err := st.SetVersioning(v); err != nil {
		log.Warn("could not keep the bucket's versioning state; status shows it unknown", "err", err)
	}
}

// recordConditions returns what the store honours of conditional
// requests: probed once per remote (the probe writes and deletes a key
// under the prefix) and kept in the state with the remote it was learned
// from, so later mounts, and status, read it from there. Offline and never
// probed it returns nil (the drain then deletes one conditional request at
// a time).
func recordConditions(ctx context.Context, client Store, st *state.State, loc remote.Location, online bool, log *slog.Logger) *remote.Conditions {
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
