package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/s3sync/s3sync/internal/confine"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
)

// MaxKeyLen is S3's limit on a key, in UTF-8 bytes.
const MaxKeyLen = 1024

// ErrKeepsChanging means a file was modified during every upload attempt.
var ErrKeepsChanging = errors.New("file kept changing during upload; it will be sent once it is left alone")

// UploadResult is what the remote holds after an upload.
type UploadResult struct {
	Size  int64
	Mtime time.Time
	ETag  string
	// Posix is the mode and owner the object's metadata holds.
	Posix remote.Posix
	// InDoubt: the upload failed in a way that may still have stored the
	// object (the connection broke, the store answered 5xx after the body).
	InDoubt bool
}

// UploadFile sends the current content of path to bucket/key. The object
// only ever holds content the file really had at one moment: the body is
// hashed before it is sent and the store refuses a body that differs, and
// the file must not have changed (size, mtime, ctime, inode) between the
// first read and the moment the object becomes visible. A file that changed
// is tried again, up to three times, and then sent from a reflink snapshot
// where its filesystem can make one; otherwise ErrKeepsChanging.
func UploadFile(ctx context.Context, r Remote, path, bucket, key, storageClass string) (UploadResult, error) {
	return uploadFile(ctx, r, ByPath(path), bucket, key, storageClass, nil)
}

// uploadFile is UploadFile; with rs, a multipart upload is kept there so a
// crash does not lose its finished parts.
//
// When it fails, the result still says what landed: the last whole version
// the store accepted (ETag set), and whether a failed request may have
// stored something nonetheless (InDoubt).
func uploadFile(ctx context.Context, r Remote, path Local, bucket, key, storageClass string, rs *Resume) (UploadResult, error) {
	return UploadFileIf(ctx, r, path, bucket, key, storageClass, rs, Cond{})
}

// UploadFileIf is UploadFile of path with the object conditional on c (a
// version it lands itself becomes the condition of its next attempt) and,
// with rs, a multipart upload kept in rs.Store for resuming (see
// uploadFile for what the result says on failure).
func UploadFileIf(ctx context.Context, r Remote, path Local, bucket, key, storageClass string, rs *Resume, c Cond) (UploadResult, error) {
	var landed UploadResult
	for range 3 {
		res, changed, err := uploadOnce(ctx, r, path, bucket, key, storageClass, rs, c)
		if err != nil || !changed {
			if err != nil && landed.ETag != "" {
				landed.InDoubt = landed.InDoubt || res.InDoubt
				return landed, err
			}
			return res, err
		}
		if res.ETag != "" {
			landed = res
			c = c.after(res.ETag)
		}
	}
	res, err := uploadSnapshot(ctx, r, path, bucket, key, storageClass, c)
	if errors.Is(err, errNoSnapshot) {
		return landed, ErrKeepsChanging
	}
	if err != nil {
		landed.InDoubt = true
		return landed, err
	}
	return res, err
}

// errChangedWhileRead aborts an upload whose file changed.
var errChangedWhileRead = errors.New("file changed while it was read")

// fileState is what tells whether a file changed: any write moves mtime and
// ctime, a replacement changes the inode. Mode and owner are what the
// object's metadata will say.
type fileState struct {
	size           int64
	mtime, ctime   time.Time
	ino, dev       uint64
	mode, uid, gid uint32
}

func (s fileState) posix() remote.Posix { return remote.FilePosix(s.mode, s.uid, s.gid) }

// PosixOf is the metadata an object of the file info describes should hold.
func PosixOf(info os.FileInfo) remote.Posix {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return remote.Posix{}
	}
	return remote.FilePosix(st.Mode, st.Uid, st.Gid)
}

func statOf(f *os.File) (fileState, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileState{}, &fs.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return fileState{
		size:  st.Size,
		mtime: time.Unix(st.Mtim.Unix()),
		ctime: time.Unix(st.Ctim.Unix()),
		ino:   st.Ino, dev: uint64(st.Dev),
		mode: st.Mode, uid: st.Uid, gid: st.Gid,
	}, nil
}

func uploadOnce(ctx context.Context, r Remote, path Local, bucket, key, storageClass string, rs *Resume, c Cond) (UploadResult, bool, error) {
	f, err := path.open(rs != nil)
	if err != nil {
		return UploadResult{}, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return UploadResult{}, false, err
	}
	if !info.Mode().IsRegular() {
		return UploadResult{}, false, fmt.Errorf("%s is not a regular file", walk.Kind(info.Mode()))
	}
	before, err := settledState(f)
	if err != nil {
		return UploadResult{}, false, err
	}
	if err := waitForWriters(f); err != nil {
		return UploadResult{}, false, err
	}
	check := func() error {
		now, err := statOf(f)
		if err != nil {
			return err
		}
		if now != before {
			return errChangedWhileRead
		}
		return nil
	}
	o := remote.PutOptions{StorageClass: storageClass, Mtime: before.mtime, Posix: before.posix(), Check: check}
	c.Set(&o)
	if rs != nil {
		if err := rs.prepare(ctx, r, bucket, key, before, &o); err != nil {
			return UploadResult{}, false, err
		}
	}
	up, err := r.Upload(ctx, bucket, key, f, before.size, o)
	if rs != nil && (err == nil || ctx.Err() == nil) {
		// Finished, or failed for good (an upload that failed is aborted
		// by Upload): nothing to resume.
		rs.forget()
	}
	if errors.Is(err, errChangedWhileRead) || errors.Is(err, remote.ErrBadDigest) {
		return UploadResult{}, true, nil
	}
	if err != nil {
		// What was sent, when it may have landed: a later upload refused
		// for it is not refused for another writer's version.
		// (Size and Mtime without an ETag: the attempt, not a result.)
		return UploadResult{Size: before.size, Mtime: before.mtime, InDoubt: MayHaveLanded(err)}, false, err
	}
	// Changed after the object became visible: the object holds what the
	// file had when it was hashed, but that is no longer the file.
	changed := check() != nil
	return UploadResult{Size: before.size, Mtime: before.mtime, ETag: up.ETag, Posix: before.posix()}, changed, nil
}

// settledState is statOf once f's ctime is older than the clock's current
// tick. Before Linux 6.13 (multigrain timestamps) a write stamps the file
// with the coarse clock, which moves once a tick (1–10 ms): a write in the
// same tick as the state an upload compares against would leave ctime and
// mtime as they were, and a read it tore would pass the check after. Once
// the tick is over every later write moves ctime. A file changed in the
// current tick waits for the next; one whose ctime stays ahead (the clock
// was set back) is taken as it is after maxTickWait.
func settledState(f *os.File) (fileState, error) {
	deadline := time.Now().Add(maxTickWait)
	for {
		st, err := statOf(f)
		if err != nil || st.ctime.Before(coarseNow()) || time.Now().After(deadline) {
			return st, err
		}
		time.Sleep(time.Millisecond)
	}
}

// maxTickWait bounds settledState's wait: ten ticks at the slowest clock.
const maxTickWait = 100 * time.Millisecond

// coarseNow is the clock a filesystem stamps writes with (a var for tests).
var coarseNow = func() time.Time {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts) != nil {
		return time.Now()
	}
	return time.Unix(ts.Unix())
}

// waitForWriters returns once every write(2) to f that began before it was
// called has finished. A write moves mtime and ctime when it begins, then
// copies its bytes: one that began before the state an upload compares
// against was taken (and is still copying, say with its thread preempted)
// would tear what the upload reads, and the state after would not show it.
// The writer holds the inode's lock for the whole write, and
// lseek(SEEK_DATA) takes that lock shared on ext4, btrfs and tmpfs, so it
// waits for such a write (XFS's takes another lock, but XFS's reads take
// that one shared: a read there never sees half a write anyway). The
// offset is put back to 0, where the upload reads from.
func waitForWriters(f *os.File) error {
	fd := int(f.Fd())
	if _, err := unix.Seek(fd, 0, unix.SEEK_DATA); err != nil && err != unix.ENXIO && err != unix.EINVAL {
		return &fs.PathError{Op: "lseek", Path: f.Name(), Err: err}
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// MayHaveLanded reports whether a failed write (upload or copy) may have
// stored the object all the same: a definite refusal (4xx: denied, 412,
// invalid) stored nothing; a dropped connection, a timeout or a 5xx after
// the body went may have.
func MayHaveLanded(err error) bool {
	var re *remote.Error
	return !errors.As(err, &re) || re.Kind == nil || errors.Is(err, remote.ErrUnreachable)
}

// errUnsafeKey marks keys that would land outside the destination.
var errUnsafeKey = errors.New("key would land outside the destination directory; not written")

// LocalPath maps a key suffix to a path below root, or fails with a reason
// when the key is not a plain relative path: "..", ".", empty components
// ("a//b"), absolute keys and NUL bytes are never written. The path is for
// messages: writes go through a confine.Root.
func LocalPath(root, rel string) (string, error) {
	if confine.Check(rel) != nil {
		return "", errUnsafeKey
	}
	return filepath.Join(root, filepath.FromSlash(rel)), nil
}

// errControlKey marks keys with control characters: a name no local tool
// shows honestly, and one that could forge a line of output.
var errControlKey = errors.New("key holds a control character; not written")

// CheckKeyName says why rel (a key below the prefix, a marker's without
// its "/") is not written to a local folder, or nil.
func CheckKeyName(rel string) error {
	if confine.Check(rel) != nil {
		return errUnsafeKey
	}
	for i := 0; i < len(rel); i++ {
		if rel[i] < 0x20 || rel[i] == 0x7f {
			return errControlKey
		}
	}
	return nil
}

// DownloadFile writes bucket/key to rel below root so that an interruption
// never leaves a truncated file under the real name: the content goes to
// an unnamed file (O_TMPFILE) that is linked into place once complete, or,
// where the filesystem lacks O_TMPFILE or the name is taken, to a
// temporary name in the same directory that is renamed over it. The file's
// mtime is restored from x-amz-meta-mtime, else set to the object's
// LastModified as the AWS CLI does, and its permission bits from
// x-amz-meta-mode (see Restore). etag, when set, must still match (the
// listing's). Nothing is resolved through a symlink on the way (see
// confine).
func DownloadFile(ctx context.Context, r Remote, bucket, key, etag string, root *confine.Root, rel string, o Restore) (remote.Info, error) {
	return DownloadFileTo(ctx, r, bucket, key, etag, root, rel, o, Publish)
}

// DownloadFileTo is DownloadFile with place giving the finished file (f,
// named tmp unless "") its name rel: the mount's pull checks there, at the
// last moment, that it replaces nothing unsent.
func DownloadFileTo(ctx context.Context, r Remote, bucket, key, etag string, root *confine.Root, rel string, o Restore, place func(root *confine.Root, f *os.File, tmp, rel string) error) (remote.Info, error) {
	dir := parentRel(rel)
	if err := mkdirAll(root, dir); err != nil {
		return remote.Info{}, ParentErr(root, rel, err)
	}
	f, tmp, err := createTemp(root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory went away since we made it: make it again.
		madeDirs.Delete(root.Join(dir))
		if err = mkdirAll(root, dir); err == nil {
			f, tmp, err = createTemp(root, dir)
		}
	}
	if err != nil {
		return remote.Info{}, ParentErr(root, rel, err)
	}
	info, err := r.Download(ctx, bucket, key, etag, f)
	if err == nil {
		// Before the file gets its name, so it never shows other bits.
		err = o.apply(f, info)
	}
	if err == nil {
		mt := info.Mtime
		if mt.IsZero() {
			mt = info.LastModified
		}
		err = setMtime(f, mt)
	}
	if err == nil {
		err = place(root, f, tmp, rel)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if tmp != "" {
			root.Remove(tmp)
		}
		if st, serr := root.Lstat(rel); serr == nil && st.IsDir() {
			return remote.Info{}, fmt.Errorf("%s is a directory here, but the bucket holds a file of that name", root.Join(rel))
		}
		return remote.Info{}, err
	}
	return info, nil
}

// parentRel is the directory of rel below the root ("" for the root).
func parentRel(rel string) string {
	dir := path.Dir(rel)
	if dir == "." {
		return ""
	}
	return dir
}

// ParentErr says why nothing could be written at rel when a folder above
// it could not be made or opened.
func ParentErr(root *confine.Root, rel string, err error) error {
	switch {
	case errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("%w: a folder above %s is a symlink here (or leads outside the destination); not written through it", ErrThroughLink, root.Join(rel))
	case errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("%w: a parent of %s is a file or a symlink here, so it cannot be a folder too (the bucket holds both a key and keys below it); not written", ErrThroughLink, root.Join(rel))
	}
	return err
}

// madeDirs remembers directories known to exist, so a clone of many files
// does not make the same parent for each. A directory swapped for a link
// since is still caught: createTemp resolves it again.
var madeDirs sync.Map

func mkdirAll(root *confine.Root, dir string) error {
	key := root.Join(dir)
	if _, ok := madeDirs.Load(key); ok {
		return nil
	}
	if err := root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	madeDirs.Store(key, true)
	return nil
}

// createTemp opens an unnamed file in dir, or a named temporary one (then
// its name is returned) where O_TMPFILE is not supported.
func createTemp(root *confine.Root, dir string) (*os.File, string, error) {
	return root.CreateTemp(dir, 0o644, tempBase)
}

// tempBase is a fresh name for a temporary file, one the walks skip.
func tempBase() string {
	var rnd [6]byte
	rand.Read(rnd[:])
	return TempPrefix + hex.EncodeToString(rnd[:])
}

// tempName is a fresh temporary name in the directory of rel.
func tempName(rel string) string { return path.Join(parentRel(rel), tempBase()) }

func procPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// setMtime sets the open file's mtime (through its fd: no path).
func setMtime(f *os.File, mt time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, procPath(f), ts, 0)
}

// Publish gives the finished file its real name.
func Publish(root *confine.Root, f *os.File, tmp, rel string) error {
	if tmp != "" {
		return root.Rename(tmp, rel, 0)
	}
	err := root.Link(f, rel)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	// The name is taken: link under a temporary name and rename over it,
	// which replaces atomically.
	named := tempName(rel)
	if err := root.Link(f, named); err != nil {
		return err
	}
	if err := root.Rename(named, rel, 0); err != nil {
		root.Remove(named)
		return err
	}
	return nil
}
