package fs

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/internal/confine"
	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
)

// Recorder receives every state change made through the mount. Paths are
// slash-separated, relative to WORKDIR, no leading slash. Implementations must
// be safe for concurrent use; Changed, Removed and Renamed must be fast and
// must not block (the journal queues in memory and group-commits): they are
// called from inside FUSE operations, some holding the namespace lock.
type Recorder interface {
	// Changed reports that path's content or metadata changed, or that it
	// was created: create and write (once, at flush/release of a handle that
	// wrote, not per write), O_TRUNC open, truncate, chmod, chown, utimes,
	// xattr changes, mkdir, mknod, symlink, hard link (the new name). After
	// a RENAME_EXCHANGE both names are reported Changed; if one of them is a
	// directory, its whole subtree changed place.
	Changed(path string)
	// Removed reports unlink (isDir false) and rmdir (isDir true).
	Removed(path string, isDir bool)
	// Renamed reports a rename of a file or of a whole directory (one call
	// for the directory, none for what it holds). Whatever was at to before
	// was replaced.
	Renamed(from, to string, isDir bool)
	// Sync returns once every change reported so far is durable. fsync(2)
	// and fdatasync(2) on a file or directory call it after the real fsync.
	Sync(ctx context.Context) error
	// Throttle may wait, when changes are reported faster than they are
	// made durable, until the recorder has caught up some. Operations
	// that change something call it first, holding no lock: the writer
	// then waits there, not in RELEASE, which the kernel sends after
	// close(2) has returned, so a wait there would hold the file's
	// descriptor while the writer opens more.
	Throttle()
}

// Options tunes the mount. The zero value is ready to use.
type Options struct {
	// Debug logs every FUSE request and reply (go-fuse's debug output).
	Debug bool
	// AttrTimeout and EntryTimeout say how long the kernel may cache
	// attributes and directory entries. Zero means 1s (libfuse's default);
	// negative means no caching, for when WORKDIR is also changed from
	// outside the mount and that must show at once.
	AttrTimeout  time.Duration
	EntryTimeout time.Duration
	// AllowOther lets users other than the one who mounted use the mount
	// (-o allow_other). Their permissions are then checked by the kernel
	// from the WORKDIR modes (see permOptions).
	AllowOther bool
	// DisableXAttrs answers ENOSYS to every xattr request, after which the
	// kernel sends none. Without it the kernel asks for
	// security.capability before every write(2) — one more round trip per
	// write, which halves write throughput with passthrough. S3 keeps no
	// xattrs, so a mirror loses nothing by not offering them.
	DisableXAttrs bool
	// DisablePassthrough keeps all I/O in this process even on kernels
	// that could do it themselves (for debugging and measurements).
	DisablePassthrough bool
	// OnWritersClosed, if set, is called when the last handle that could
	// change a file is released (see Mounted.Writing). It must not block.
	OnWritersClosed func()
	// OpenWriterInterval is how often files open for writing are looked
	// at and, if they changed since their last record, recorded Changed,
	// so a file written for hours (a log, a long job's output) is backed
	// up while it stays open, not only at close. Under passthrough its
	// writes are not seen one by one, so nothing else would record them.
	// Zero means 5s; negative turns it off.
	OpenWriterInterval time.Duration
	// IoUring serves requests over FUSE-over-io_uring when the kernel
	// offers it (Linux 6.14+, fuse module parameter enable_uring=Y),
	// and over /dev/fuse otherwise; Mounted.IoUringErr says which and
	// why.
	IoUring bool
	// MaxNodes bounds the files and directories the kernel may hold
	// looked up (and this process a node for) before it is asked to forget
	// those learnt longest ago and not opened since (see nodeLimit). Zero
	// means DefaultMaxNodes; negative, no bound.
	MaxNodes int

	// entryOnly makes the node limit invalidate entries, as it does on
	// kernels without FUSE_NOTIFY_PRUNE (for tests).
	entryOnly bool
}

// Mounted is a running mount: the go-fuse server, and what the syncer may
// ask about the files open through it.
type Mounted struct {
	*fuse.Server
	m *mountState
}

// KnownNodes is how many files and directories the kernel holds looked up
// through the mount (and this process a node for), the root aside.
func (mt *Mounted) KnownNodes() int { return mt.m.nodes.count() }

// Writing reports whether the file at rel (slash-separated, relative to
// WORKDIR) is open for writing through the mount. Under FUSE passthrough
// its writes do not reach us, so until it is closed (or fsynced) a copy of
// it may catch it half-written: the syncer waits. The answer is advisory;
// a file opened the moment after is caught by the upload's own check.
func (mt *Mounted) Writing(rel string) bool {
	in := mt.m.root.EmbeddedInode()
	for name := range strings.SplitSeq(rel, "/") {
		if in = in.GetChild(name); in == nil {
			return false
		}
	}
	n, ok := in.Operations().(*Node)
	return ok && n.writers.Load() > 0
}

// OpenForWriting is how many handles that may change their file are open
// through the mount. close(2) returns before the kernel sends RELEASE,
// where a handle's change is recorded: a stop right after a close waits for
// this to fall before it looks at what is pending.
func (mt *Mounted) OpenForWriting() int64 { return mt.m.writing.Load() }

// Mount serves workdir at mountpoint and reports changes to rec. The returned
// server is already serving (WaitMount done). Unmount with srv.Unmount().
//
// When running as root, go-fuse calls mount(2) itself, so fusermount3 is not
// needed; otherwise fusermount3 must be installed.
func Mount(workdir, mountpoint string, rec Recorder, opts Options) (*Mounted, error) {
	srv, m, err := mount(workdir, mountpoint, rec, opts)
	if err != nil {
		return nil, err
	}
	return &Mounted{Server: srv, m: m}, nil
}

// mount is Mount that also hands back the mount's state, for tests.
func mount(workdir, mountpoint string, rec Recorder, opts Options) (*fuse.Server, *mountState, error) {
	if rec == nil {
		return nil, nil, fmt.Errorf("fs: mount %s: nil Recorder", mountpoint)
	}
	abs, err := filepath.Abs(workdir)
	if err != nil {
		return nil, nil, fmt.Errorf("fs: mount %s: %w", workdir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(abs, &st); err != nil {
		return nil, nil, fmt.Errorf("fs: mount: workdir %s: %w", abs, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, nil, fmt.Errorf("fs: mount: workdir %s: %w", abs, syscall.ENOTDIR)
	}

	dir, err := confine.Open(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("fs: mount: workdir %s: %w", abs, err)
	}
	m := &mountState{rec: rec, dir: dir, noPassthrough: opts.DisablePassthrough, onWritersClosed: opts.OnWritersClosed}
	m.asRoot = os.Geteuid() == 0
	switch {
	case opts.MaxNodes == 0:
		m.nodes = newNodeLimit(DefaultMaxNodes)
	case opts.MaxNodes > 0:
		m.nodes = newNodeLimit(opts.MaxNodes)
	default: // counted, never pruned
		m.nodes = newNodeLimit(math.MaxInt)
	}
	m.nodes.entryOnly = opts.entryOnly
	// Made (fixNew) sets the owner and mode of what is made through the
	// mount, in the directory the op resolved: go-fuse's own chown to the
	// caller (KeepOwner false) would only be a second one.
	// OpenDir: go-fuse's loopback resolves every directory it acts in
	// below WORKDIR's fd, following no symlink, and then acts on one name
	// there (see doc.go, Confinement).
	root := &gofs.LoopbackRoot{Path: abs, Dev: uint64(st.Dev), KeepOwner: true, OpenDir: dir.DirFd, Made: m.made}
	rootNode := &Node{LoopbackNode: &gofs.LoopbackNode{RootData: root}, m: m}
	root.RootNode = rootNode
	m.root = rootNode

	attr, entry := timeout(opts.AttrTimeout), timeout(opts.EntryTimeout)
	mo := fuse.MountOptions{
		FsName:     abs,
		Name:       "s3sync",
		Debug:      opts.Debug,
		AllowOther: opts.AllowOther,
		Options:    permOptions(opts.AllowOther),
		// As root, mount(2) directly; fall back to fusermount3 otherwise.
		DirectMount: os.Geteuid() == 0,
		// O_TRUNC arrives with OPEN instead of as a separate SETATTR, so
		// an O_TRUNC rewrite is one change on one handle, recorded once.
		ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC | killPriv(opts.AllowOther),
		DisableXAttrs:     opts.DisableXAttrs,
		EnableIoUring:     opts.IoUring,
	}
	srv, err := gofs.Mount(mountpoint, rootNode, &gofs.Options{
		MountOptions: mo,
		AttrTimeout:  &attr,
		EntryTimeout: &entry,
		// go-fuse otherwise shows a mode 0000 as 0644 (0755 for a
		// directory), which under default_permissions opens the file to
		// every user.
		NullPermissions: true,
	})
	if err != nil {
		dir.Close()
		return nil, nil, fmt.Errorf("fs: mount %s at %s: %w", abs, mountpoint, err)
	}
	// The kernel may drop pending RELEASEs when the mount goes away;
	// close (and report) what it left open once serving has stopped.
	// WORKDIR's fd is closed last, once nothing can use it any more.
	stop := make(chan struct{})
	var watching sync.WaitGroup
	if every := openWriterInterval(opts.OpenWriterInterval); every > 0 {
		watching.Go(func() { m.watchOpenWriters(every, stop) })
	}
	go func() {
		srv.Wait()
		close(stop)
		m.releaseAll()
		watching.Wait()
		dir.Close()
	}()
	go m.nodes.run(stop)
	ks := srv.KernelSettings()
	m.kernelPassthrough = ks.Flags64()&fuse.CAP_PASSTHROUGH != 0 && os.Geteuid() == 0
	slog.Debug("fs: mounted", "workdir", abs, "mountpoint", mountpoint,
		"kernel_passthrough", m.kernelPassthrough, "passthrough_disabled", opts.DisablePassthrough)
	return srv, m, nil
}

// permOptions: only the user who mounted can reach the mount unless
// allow_other, and this process makes every syscall in WORKDIR with that
// user's own credentials, so WORKDIR's permissions apply as they are.
// default_permissions would have the kernel check them once more, and for
// that refetch a directory's attributes (one GETATTR round trip) before
// every file created in it, since each create invalidates them. With
// allow_other the callers are other users, so the kernel must check.
func permOptions(allowOther bool) []string {
	if allowOther {
		return []string{"default_permissions"}
	}
	return nil
}

// killPriv: the kernel leaves clearing setuid/setgid bits (on write,
// truncate, chown) to us, when our syscalls carry the caller's own
// credentials (see permOptions): WORKDIR's filesystem then clears them as it
// would for the caller. Otherwise the kernel fetches the attributes before
// every chown to work out the bits itself (one GETATTR round trip per file
// that tar or cp -p makes).
func killPriv(allowOther bool) uint64 {
	if allowOther {
		return 0
	}
	return fuse.CAP_HANDLE_KILLPRIV
}

func openWriterInterval(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Second
	}
	return d
}

func timeout(d time.Duration) time.Duration {
	switch {
	case d == 0:
		return time.Second
	case d < 0:
		return 0
	}
	return d
}
