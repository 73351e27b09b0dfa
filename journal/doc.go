// Package journal is the durable, ordered, coalescing queue of paths that
// changed in the working directory and still have to reach the remote.
//
// The FUSE layer records a change when the operation happens; recording only
// appends to memory, and one committer goroutine group-commits whatever has
// queued in a single bbolt transaction. That keeps every FUSE operation off
// the disk's fsync path, while Sync gives fsync(2) the guarantee a real
// filesystem's journal gives: once it returns, the change survives a crash.
//
// The syncer drains the journal in sequence order and removes a record only
// once the remote holds the change (Done). A record that was re-recorded while
// the syncer worked on it keeps its place, because Done, Retry and Fail act
// only when the record's sequence number still matches. Permanent failures
// go to a failed list that stays visible until RetryFailed or a new change.
//
// The package must not know about S3 or any remote: it stores paths, not
// objects, and it never decides what a change means for the bucket. It shares
// the state database with package cache, each in its own buckets; package
// state opens it.
package journal
