package main

import (
	"fmt"

	"github.com/s3sync/s3sync/state"
)

// scanRefusalLine is status's line for r.
func scanRefusalLine(r *state.ScanRefusal) string {
	are := "are"
	if r.Files == 1 {
		are = "is"
	}
	return fmt.Sprintf("%s gone from WORKDIR while it was not mounted %s still in the bucket, over %s; to delete them from the bucket too, mount again with %s",
		humanCount(int64(r.Files), "file", "files"), are, r.Limit, r.Allow)
}
