// Package mirror is the long-running program of a mount. Prepare runs its
// start-up steps (the bucket check and what it decides, what the state
// keeps of the store, a first mount's seeding, stale uploads, the scan of
// WORKDIR and its --max-delete gate); Start, once WORKDIR is served, runs
// the drain loop that sends the journal's records to the bucket (Drainer:
// settle delays, one operation per path at a time, ordering of renames and
// trees, pauses and backoff, the failed list) and the pull that brings
// other writers' changes into WORKDIR (Puller); Stop ends them. It also
// holds conflicts with other writers, the resuming and aborting of
// multipart uploads cut off by a crash, the seeding of a first mount's
// cache from the bucket, the hard-link index, and empty directories'
// markers and symlinks' objects as the drain keeps them, and the status
// model (Report) that cmd/s3sync renders.
//
// It decides when and what to send; package syncer decides how: its diff
// rules, filters, walk, checksums and transfers are the primitives mirror
// calls, so a record goes mirror → syncer → remote and nothing comes back
// up. mirror imports syncer, never the reverse.
//
// It must not know FUSE internals (the mount is reached through Hooks: the
// small interface PullMount and the Writing callback), hold the one-shot
// reconcile, restore or verify logic (syncer's), or talk to S3 other than
// through syncer.Remote and Store.
package mirror
