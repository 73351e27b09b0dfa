// Package cache records what the remote holds for each path: the size and
// local mtime of the file when it was uploaded, its ETag and storage class.
// With it the syncer decides what to transfer without listing the bucket,
// and Scan finds what changed in the working directory while nothing was
// journaling it (before a mount, or after a crash).
//
// The package does no I/O to S3 and does not know about the journal: it
// stores what the syncer tells it and reads the local working directory. It
// shares the state database with package journal, in buckets of its own;
// package state opens it.
//
// Paths are S3-key-shaped: slash-separated, relative to the working
// directory, compared as bytes. The scan's walk (internal/walk) yields
// local files in that same order, which is not the order of a plain
// recursive walk ("a-b" < "a/x" < "a0"), so a walk and the cache can be
// merged without holding either in memory.
package cache
