// Package syncer owns how s3sync decides and moves: the diff rules of
// `aws s3 sync` (one function, ShouldTransfer, shared by reconcile and the
// mount), the filters, the ordered local walk, checksums, the transfer
// workers with their safety checks, and the one-shot reconcile (all three
// directions), restore and verify. The transfer primitives the mount's
// long-running side uses (package mirror) are exported here: UploadFileIf,
// UploadLinkIf, DownloadFileTo, DownloadLinkTo, HoldsFile, …
//
// It must not know about FUSE, nor hold long-running state: the drain loop,
// the pull and conflicts live in package mirror, which imports this one,
// never the reverse. It talks to S3 only through the Remote interface it
// declares, which package remote implements.
package syncer
