// Package fs serves a working directory (WORKDIR) through FUSE and turns
// every change made through the mount into a call on a Recorder.
//
// It owns the go-fuse node tree over WORKDIR: a loopback (go-fuse's
// fs.LoopbackNode) whose mutating operations are wrapped so that, once the
// real syscall on WORKDIR has succeeded, the change is reported by path:
// Changed for content and metadata, Removed for unlink/rmdir, Renamed for
// rename. Reads and writes go straight to the WORKDIR files; on kernels with
// FUSE passthrough (6.9+, as root) the kernel does the I/O itself, which is
// why content changes are recorded per open handle (at flush/release) and not
// per write.
//
// It must not talk to S3, and no FUSE operation may wait on the network: the
// Recorder is expected to queue in memory and return at once. The only
// operation that waits on the Recorder is fsync, which by contract returns
// once the change record is durable (Recorder.Sync).
//
// Nothing is filtered here: which paths are synced is the syncer's business.
// What the syncer may ask is whether a file is still open for writing
// (Mounted.Writing), since under passthrough its writes are not seen.
//
// Permissions: unless Options.AllowOther, only the user who mounted can
// reach the mount and every WORKDIR syscall runs with that user's
// credentials, so WORKDIR itself checks permissions and clears setuid bits;
// the kernel is not asked to do it again (no default_permissions, and
// CAP_HANDLE_KILLPRIV), which saves two round trips per file created. With
// AllowOther the kernel checks (default_permissions), and what a user
// creates is made theirs, with the mode they asked for (owner.go).
//
// Confinement: no syscall on WORKDIR takes a path string. WORKDIR is opened
// once as an internal/confine Root; every operation (go-fuse's loopback's
// Lookup, Getattr, Open, Create, Mkdir, Rename, Setattr, xattrs, Readdir,
// Statfs... through LoopbackRoot.OpenDir, and this package's own through
// confine.At) resolves the directory it acts in below that fd with
// openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), once per operation, and then
// acts on the last name alone with the *at call, never following a symlink
// there (chmod: fchmodat2 AT_SYMLINK_NOFOLLOW; truncate and the xattr calls:
// through /proc/self/fd of an O_PATH fd of the node). So when a directory of
// WORKDIR is swapped for a link while the kernel still holds it (a user with
// a shell in it, under AllowOther), whatever is asked there fails with ELOOP
// or ENOTDIR and nothing outside WORKDIR is touched. Only open handles keep
// working on the file they opened, wherever it went.
//
// Path conventions: paths given to the Recorder are slash-separated, relative
// to WORKDIR, with no leading slash; the root itself is "".
//
// Known limits, all shared with go-fuse's loopback:
//   - A file with several hard links is reported under one of its names (the
//     one go-fuse last saw); the other names are not reported on writes.
//   - Writes to a file that was unlinked while open are not reported (the
//     file has no name any more; its Removed was reported).
//   - A writable handle under FUSE passthrough is invisible to us while it
//     writes; it is reported Changed when it is released even if it did not
//     write (see fileHandle.Release). Without passthrough, only handles that
//     wrote are reported.
package fs
