package main

import (
	"fmt"

	"github.com/s3sync/s3sync/mirror"
)

// Other writers: status's lines on what the store honours of conditional
// requests (probed once per mount, kept in the state) and on the open
// conflicts.

func printConflicts(r mirror.Report) {
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
