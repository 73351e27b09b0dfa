package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
)

// Symlinks stored as links: rclone's --links format, an object
// NAME.rclonelink whose body is the link's target. A link is never
// followed here: what it points to may be outside the tree (credentials in
// a home directory), and a link's removal must remove only its object.

// maxLinkTarget bounds a .rclonelink body read back: Linux's PATH_MAX.
const maxLinkTarget = 4096

// linkState is what tells whether a symlink changed: lstat's fields (the
// link's own, never its target's) and its target.
type linkState struct {
	fileState
	target string
}

// StatLink is lstat of the symlink at path: its size (its target's length)
// and its own mtime; an error if it is no longer a symlink.
func StatLink(path Local) (size int64, mtime time.Time, err error) {
	st, err := lstatLink(path)
	return st.size, st.mtime, err
}

func lstatLink(path Local) (linkState, error) {
	st, err := path.lstat()
	if err != nil {
		return linkState{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return linkState{}, fmt.Errorf("%s is no longer a symlink", path)
	}
	target, err := path.readlink()
	if err != nil {
		return linkState{}, err
	}
	return linkState{
		fileState: fileState{
			size:  st.Size,
			mtime: time.Unix(st.Mtim.Unix()),
			ctime: time.Unix(st.Ctim.Unix()),
			ino:   st.Ino, dev: uint64(st.Dev),
		},
		target: target,
	}, nil
}

// uploadLink stores the symlink at path as key (a .rclonelink key), its
// body the target as os.Readlink gives it, its x-amz-meta-mtime the link's
// own mtime. A link replaced while it is sent is not stored.
func uploadLink(ctx context.Context, r Remote, path Local, bucket, key, storageClass string) (UploadResult, error) {
	return UploadLinkIf(ctx, r, path, bucket, key, storageClass, Cond{})
}

// UploadLinkIf is uploadLink on condition c: it stores the symlink at path
// as key (a .rclonelink key), its body the target.
func UploadLinkIf(ctx context.Context, r Remote, path Local, bucket, key, storageClass string, c Cond) (UploadResult, error) {
	before, err := lstatLink(path)
	if err != nil {
		return UploadResult{}, err
	}
	check := func() error {
		now, err := lstatLink(path)
		if err != nil {
			return err
		}
		if now != before {
			return errChangedWhileRead
		}
		return nil
	}
	body := strings.NewReader(before.target)
	o := remote.PutOptions{StorageClass: storageClass, Mtime: before.mtime, Check: check}
	c.Set(&o)
	up, err := r.Upload(ctx, bucket, key, body, int64(len(before.target)), o)
	if err != nil {
		return UploadResult{Size: before.size, Mtime: before.mtime, InDoubt: MayHaveLanded(err)}, err
	}
	return UploadResult{Size: before.size, Mtime: before.mtime, ETag: up.ETag}, nil
}

// linkBuffer collects a .rclonelink body, refusing more than a target can be.
type linkBuffer struct{ bytes.Buffer }

var errLinkTooLong = errors.New("a .rclonelink object holds more bytes than a symlink target can (4096)")

func (b *linkBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxLinkTarget {
		return 0, errLinkTooLong
	}
	return b.Buffer.Write(p)
}

// downloadLink makes rel below root a symlink whose target is the body of
// bucket/key. The link is made under a temporary name and renamed into
// place, so a file or link already there is replaced at once and never
// written through. Its mtime is restored from x-amz-meta-mtime, else set
// to the object's LastModified.
func downloadLink(ctx context.Context, r Remote, bucket, key, etag string, root *confine.Root, rel string) (remote.Info, error) {
	return DownloadLinkTo(ctx, r, bucket, key, etag, root, rel, func(tmp string) error { return root.Rename(tmp, rel, 0) })
}

// DownloadLinkTo is downloadLink with place renaming the finished link
// (tmp, below root) to rel (see DownloadFileTo): it makes a symlink whose
// target is the body of bucket/key, its mtime the object's.
func DownloadLinkTo(ctx context.Context, r Remote, bucket, key, etag string, root *confine.Root, rel string, place func(tmp string) error) (remote.Info, error) {
	var buf linkBuffer
	info, err := r.Download(ctx, bucket, key, etag, &buf)
	if err != nil {
		return remote.Info{}, err
	}
	target := buf.String()
	if err := confine.CheckLinkTarget(target); err != nil {
		return remote.Info{}, fmt.Errorf("%s is not a symlink target: %w", key, err)
	}
	if err := mkdirAll(root, parentRel(rel)); err != nil {
		return remote.Info{}, ParentErr(root, rel, err)
	}
	tmp := tempName(rel)
	if err := root.Symlink(target, tmp); err != nil {
		return remote.Info{}, ParentErr(root, rel, err)
	}
	mt := info.Mtime
	if mt.IsZero() {
		mt = info.LastModified
	}
	err = root.Chtimes(tmp, mt, mt)
	if err == nil {
		if st, serr := root.Lstat(rel); serr == nil && st.IsDir() {
			err = fmt.Errorf("%s is a directory here, but the bucket holds a symlink of that name", root.Join(rel))
		}
	}
	if err == nil {
		err = place(tmp)
	}
	if err != nil {
		root.Remove(tmp)
		return remote.Info{}, err
	}
	return info, nil
}

// linkContent is a symlink's content as the checksums of its .rclonelink
// object's body.
func linkContent(ctx context.Context, path Local) (content, int64, time.Time, error) {
	st, err := lstatLink(path)
	if err != nil {
		return content{}, 0, time.Time{}, err
	}
	d, err := digest(ctx, strings.NewReader(st.target))
	if err != nil {
		return content{}, 0, time.Time{}, err
	}
	return localContent(d), st.size, st.mtime, nil
}

// HoldsLink reports whether the object info describes (a .rclonelink, from
// a HEAD) holds the symlink at path: its size is the target's length and
// its body the target, by the store's CRC64NVME or a single-part MD5.
func HoldsLink(ctx context.Context, path Local, info remote.Info) bool {
	lc, size, _, err := linkContent(ctx, path)
	same, known := sameContent(lc, objectContent(info.ETag).withHead(info))
	return err == nil && size == info.Size && known && same
}

// LinkListed reports whether the listed object o (a .rclonelink) holds the
// symlink at path as far as a listing tells: an upload would not transfer
// it (ShouldTransfer, a link's size being its target's length) and, where
// the ETag is an MD5, its body is the target. It returns the link's size
// and mtime.
func LinkListed(path string, o remote.Object) (size int64, mtime time.Time, held bool) {
	st, err := lstatLink(ByPath(path))
	if err != nil {
		return 0, time.Time{}, false
	}
	if ShouldTransfer(Upload, Side{st.size, st.mtime}, Side{o.Size, o.LastModified}, Compare{}) {
		return 0, time.Time{}, false
	}
	d, _ := digest(context.Background(), strings.NewReader(st.target))
	if same, known := sameContent(localContent(d), objectContent(o.ETag)); known && !same {
		return 0, time.Time{}, false
	}
	return st.size, st.mtime, true
}

// ErrThroughLink: a download or delete would go through a symlink
// already in the destination.
var ErrThroughLink = errors.New("symlink in the destination")

// parentLink checks the directories above rel (below root) for symlinks
// a download would write through: with strict, any; otherwise one that
// leads outside realRoot (root's real path). It returns an error for a
// person naming the link, or nil. *known holds a parent directory already
// found safe; keys arrive in order, so a download of many files lstats each
// folder once.
func parentLink(root, realRoot, rel string, strict bool, known *string) error {
	dir := filepath.ToSlash(filepath.Dir(filepath.FromSlash(rel)))
	if dir == "." || dir == *known {
		return nil
	}
	start := 0
	if *known != "" && Under(dir, *known) {
		start = len(*known) + 1
	}
	for i := start; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		full := filepath.Join(root, filepath.FromSlash(p))
		st, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			break // made as a real directory by the download (or refused there)
		}
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		dest, err := filepath.EvalSymlinks(full)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %s is a symlink that leads nowhere; not written through it", ErrThroughLink, full)
		case strict:
			return fmt.Errorf("%w: %s is a symlink here (to %s), but the bucket holds keys below it; not written through it", ErrThroughLink, full, dest)
		case !walk.Within(dest, realRoot):
			return fmt.Errorf("%w: %s is a symlink to %s, outside the destination; not written through it", ErrThroughLink, full, dest)
		}
	}
	*known = dir
	return nil
}

// symlinks is the walk's symlink mode for reconcile's flags.
func (o Options) symlinks() walk.Links {
	switch {
	case o.Links:
		return walk.StoreLinks
	case o.NoFollow:
		return walk.SkipLinks
	}
	return walk.FollowLinks
}

// markLinks marks a download's .rclonelink objects as links (--links).
type markLinks struct{ stream }

func (s markLinks) next() (entry, bool) {
	e, ok := s.stream.next()
	e.link = ok && strings.HasSuffix(e.rel, LinkSuffix)
	return e, ok
}

// show renders en on side e: a local link by its own name, not its key.
func (rc *run) show(e Endpoint, en entry) string {
	if en.link && !e.IsS3 {
		return e.Show(strings.TrimSuffix(en.rel, LinkSuffix))
	}
	return e.Show(en.rel)
}

// linkDiffers reports, for a symlink and its object of the same size,
// whether the object's body (its single-part ETag, an MD5) is not the
// link's target: a retargeted link keeps its length more often than a
// rewritten file does, and telling costs one readlink.
func (rc *run) linkDiffers(s, d entry) bool {
	local, obj := s, d
	if rc.dir == Download {
		local, obj = d, s
	}
	if !local.link || !obj.link && rc.dir == Download || s.size != d.size {
		return false
	}
	c, _, _, err := linkContent(rc.ctx, ByPath(local.path))
	if err != nil {
		return false // the transfer, if any, reports why
	}
	same, known := sameContent(c, objectContent(obj.etag))
	return known && !same
}
