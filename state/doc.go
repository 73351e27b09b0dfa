// Package state is the one owner of a mount's state database (state.db in
// the state dir): it opens it, private to the user and locked against a
// second process, and hands out what lives in it: the journal of changes
// not yet sent and the cache of what the remote holds (Open), or the
// checksum store alone, for verify and reconcile (OpenSums). It keeps the
// state's typed settings (the WORKDIR and remote the state was made for,
// what the store honours of conditional requests, the writer id, the
// bucket's versioning, the deletions a start-up scan refused), and ends a
// record together with what the cache now says of its paths, in one
// transaction (Done).
//
// It must not hand a bbolt transaction or database to anyone above it: what
// must commit together is one call here. It makes no request to S3: what
// the store says is learned by the caller and kept here.
package state
