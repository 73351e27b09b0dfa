package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
	return uploadFile(ctx, r, path, bucket, key, storageClass, nil)
}

// uploadFile is UploadFile; with rs, a multipart upload is kept there so a
// crash does not lose its finished parts.
//
// When it fails, the result still says what landed: the last whole version
// the store accepted (ETag set), and whether a failed request may have
// stored something nonetheless (InDoubt).
func uploadFile(ctx context.Context, r Remote, path, bucket, key, storageClass string, rs *resumer) (UploadResult, error) {
	return uploadFileIf(ctx, r, path, bucket, key, storageClass, rs, cond{})
}

// uploadFileIf is uploadFile with the object conditional on c (see cond);
// a version it lands itself becomes the condition of its next attempt.
func uploadFileIf(ctx context.Context, r Remote, path, bucket, key, storageClass string, rs *resumer, c cond) (UploadResult, error) {
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

func uploadOnce(ctx context.Context, r Remote, path, bucket, key, storageClass string, rs *resumer, c cond) (UploadResult, bool, error) {
	f, err := openUpload(path, rs != nil)
	if err != nil {
		return UploadResult{}, false, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return UploadResult{}, false, err
	}
	if !info.Mode().IsRegular() {
		return UploadResult{}, false, fmt.Errorf("%s is not a regular file", kindOf(info.Mode()))
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
	c.set(&o)
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
		return UploadResult{Size: before.size, Mtime: before.mtime, InDoubt: mayHaveLanded(err)}, false, err
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

// mayHaveLanded reports whether a failed write (upload or copy) may have
// stored the object all the same: a definite refusal (4xx: denied, 412,
// invalid) stored nothing; a dropped connection, a timeout or a 5xx after
// the body went may have.
func mayHaveLanded(err error) bool {
	var re *remote.Error
	return !errors.As(err, &re) || re.Kind == nil || errors.Is(err, remote.ErrUnreachable)
}

// errUnsafeKey marks keys that would land outside the destination.
var errUnsafeKey = errors.New("key would land outside the destination directory; not written")

// LocalPath maps a key suffix to a path below root, or fails with a reason
// when the key is not a plain relative path: "..", ".", empty components
// ("a//b"), absolute keys and NUL bytes are never written.
func LocalPath(root, rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return "", errUnsafeKey
	}
	for part := range strings.SplitSeq(rel, "/") {
		if part == "" || part == "." || part == ".." {
			return "", errUnsafeKey
		}
	}
	p := filepath.Join(root, filepath.FromSlash(rel))
	// Belt and braces: Join cleans, so whatever passed must still be inside.
	if r, err := filepath.Rel(root, p); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", errUnsafeKey
	}
	return p, nil
}

// DownloadFile writes bucket/key to path so that an interruption never
// leaves a truncated file under the real name: the content goes to an
// unnamed file (O_TMPFILE) that is linked into place once complete, or,
// where the filesystem lacks O_TMPFILE or the name is taken, to a
// temporary name in the same directory that is renamed over it. The file's
// mtime is restored from x-amz-meta-mtime, else set to the object's
// LastModified as the AWS CLI does, and its permission bits from
// x-amz-meta-mode (see Restore). etag, when set, must still match (the
// listing's).
func DownloadFile(ctx context.Context, r Remote, bucket, key, etag, path string) (remote.Info, error) {
	return DownloadFileWith(ctx, r, bucket, key, etag, path, Restore{})
}

// DownloadFileWith is DownloadFile, restoring what o asks for.
func DownloadFileWith(ctx context.Context, r Remote, bucket, key, etag, path string, o Restore) (remote.Info, error) {
	return downloadFileTo(ctx, r, bucket, key, etag, path, o, publish)
}

// downloadFileTo is DownloadFileWith with place giving the finished file
// (f, named tmp unless "") its name path: the mount's pull checks there,
// at the last moment, that it replaces nothing unsent.
func downloadFileTo(ctx context.Context, r Remote, bucket, key, etag, path string, o Restore, place func(f *os.File, tmp, path string) error) (remote.Info, error) {
	dir := filepath.Dir(path)
	if err := mkdirAll(dir); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EEXIST) {
			return remote.Info{}, fmt.Errorf("a parent of %s is a file, so it cannot be a folder too (the bucket holds both a key and keys below it)", path)
		}
		return remote.Info{}, err
	}
	f, tmp, err := createTemp(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory went away since we made it: make it again.
		madeDirs.Delete(dir)
		if err = mkdirAll(dir); err == nil {
			f, tmp, err = createTemp(dir)
		}
	}
	if err != nil {
		return remote.Info{}, err
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
		err = setMtime(f, tmp, mt)
	}
	if err == nil {
		err = place(f, tmp, path)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if tmp != "" {
			os.Remove(tmp)
		}
		if st, serr := os.Lstat(path); serr == nil && st.IsDir() {
			return remote.Info{}, fmt.Errorf("%s is a directory here, but the bucket holds a file of that name", path)
		}
		return remote.Info{}, err
	}
	return info, nil
}

// madeDirs remembers directories known to exist, so a clone of many files
// does not stat the same parent for each.
var madeDirs sync.Map

func mkdirAll(dir string) error {
	if _, ok := madeDirs.Load(dir); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	madeDirs.Store(dir, true)
	return nil
}

// createTemp opens an unnamed file in dir, or a named temporary one (then
// its name is returned) where O_TMPFILE is not supported.
func createTemp(dir string) (*os.File, string, error) {
	fd, err := unix.Open(dir, unix.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, 0o644)
	if err == nil {
		return os.NewFile(uintptr(fd), dir), "", nil
	}
	tmp := tempName(dir)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, "", err
	}
	return f, tmp, nil
}

// tempName is a fresh name for a temporary file in dir, one the walks skip.
func tempName(dir string) string {
	var rnd [6]byte
	rand.Read(rnd[:])
	return filepath.Join(dir, TempPrefix+hex.EncodeToString(rnd[:]))
}

func procPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

func setMtime(f *os.File, tmp string, mt time.Time) error {
	if tmp != "" {
		return os.Chtimes(tmp, mt, mt)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, procPath(f), ts, 0)
}

// publish gives the finished file its real name.
func publish(f *os.File, tmp, path string) error {
	if tmp != "" {
		return os.Rename(tmp, path)
	}
	err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	// The name is taken: link under a temporary name and rename over it,
	// which replaces atomically.
	named := tempName(filepath.Dir(path))
	if err := unix.Linkat(unix.AT_FDCWD, procPath(f), unix.AT_FDCWD, named, unix.AT_SYMLINK_FOLLOW); err != nil {
		return err
	}
	if err := os.Rename(named, path); err != nil {
		os.Remove(named)
		return err
	}
	return nil
}
