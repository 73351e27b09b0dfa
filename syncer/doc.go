// Package syncer owns how s3sync decides and moves: the diff rules of
// `aws s3 sync` (one function, ShouldTransfer, shared by reconcile and the
// mount's drain loop), the filters, the ordered local walk, the transfer
// workers with their safety checks, reconcile in all three directions, and
// the loop that drains the mount's journal.
//
// It must not know about FUSE. It talks to S3 only through the Remote
// interface it declares, which package remote implements.
package syncer
