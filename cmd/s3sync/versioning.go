package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

// recordVersioning asks the store whether the bucket keeps old versions
// and keeps the answer in the state. Not knowing is no reason to refuse a
// mount: the state then says unknown.
func recordVersioning(ctx context.Context, client *remote.Client, st *state.State, bucket string, online bool, log *slog.Logger) {
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

// versioningLine is status's line on whether the bucket can undo a delete
// or an overwrite, with the command that makes it so where it cannot.
func versioningLine(v remote.Versioning, remoteURL string) string {
	bucket := "BUCKET"
	if loc, err := remote.ParseURL(remoteURL); err == nil {
		bucket = loc.Bucket
	}
	turnOn := fmt.Sprintf("s3sync mb --versioning s3://%s (or aws s3api put-bucket-versioning)", bucket)
	switch v {
	case remote.VersioningEnabled:
		return "on, deleted and overwritten objects can be recovered from their old versions"
	case remote.VersioningOff:
		return "OFF, deletes and overwrites in the bucket cannot be undone; turn it on with: " + turnOn
	case remote.VersioningSuspended:
		return "SUSPENDED, new deletes and overwrites in the bucket cannot be undone; turn it back on with: " + turnOn
	}
	return "unknown (the store did not say when the mount started)"
}
