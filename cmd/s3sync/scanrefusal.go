package main

import (
	"fmt"
	"log/slog"

	"github.com/s3sync/s3sync/state"
)

// recordScanRefusal keeps the deletions this start-up's scan refused in the
// state (nil: none), so that status shows them long after this log.
func recordScanRefusal(st *state.State, r *state.ScanRefusal, log *slog.Logger) {
	if err := st.SetScanRefusal(r); err != nil {
		log.Warn("could not keep the refused deletions in the state; only this log tells of them", "err", err)
	}
}

// scanRefusalLine is status's line for r.
func scanRefusalLine(r *state.ScanRefusal) string {
	are := "are"
	if r.Files == 1 {
		are = "is"
	}
	return fmt.Sprintf("%s gone from WORKDIR while it was not mounted %s still in the bucket, over %s; to delete them from the bucket too, mount again with %s",
		humanCount(int64(r.Files), "file", "files"), are, r.Limit, r.Allow)
}
