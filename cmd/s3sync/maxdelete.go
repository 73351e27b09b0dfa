package main

import "github.com/s3sync/s3sync/syncer"

// refusedErr is the exit for a run whose deletions --max-delete refused:
// the rest of the run was done, and repeating it changes nothing until a
// person decides, so it is exit 2 (as skipped files are), or 1 if
// transfers failed as well.
func refusedErr(r *syncer.DeleteRefusal, sum syncer.Summary) error {
	code := exitSkipped
	if sum.Failed > 0 {
		code = exitFailed
	}
	return &exitError{code: code, msg: r.Error()}
}
