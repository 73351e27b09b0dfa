package main

import (
	"fmt"

	"github.com/s3sync/s3sync/remote"
)

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
