package syncer

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/walk"
	"github.com/s3sync/s3sync/remote"
)

// VerifyOptions are verify's flags.
type VerifyOptions struct {
	Filters  *Filters
	NoFollow bool // skip local symlinks instead of following them
	// Links compares local symlinks, never followed, with rclone's
	// .rclonelink objects (how the mount and reconcile --links store them).
	Links bool
	// Owner also compares uid and gid (x-amz-meta-uid, -gid) with the
	// local file's owner; modes are always compared (see judgeMeta).
	Owner bool
	// Concurrency bounds the pairs being checked at once (HEADs and
	// hashes); DefaultConcurrency when 0.
	Concurrency int
	// Sums caches local checksums between runs; nil reads every file.
	Sums   SumCache
	Report func(Finding)
}

// FindingKind says what a Finding reports.
type FindingKind string

const (
	FindDiffers      FindingKind = "differs"       // on both sides, not the same
	FindOnlySrc      FindingKind = "only_src"      // missing at DST
	FindOnlyDst      FindingKind = "only_dst"      // missing at SRC
	FindNotCheckable FindingKind = "not_checkable" // size and mtime agree; no checksum to compare content
	FindError        FindingKind = "error"         // could not be compared (HEAD or read failed)
	FindSkipped      FindingKind = "skipped"       // a local entry no bucket can hold (special file, …)
)

// FindMetaDiffers: size, mtime and content agree (or content is not
// checkable); the mode, or with Owner the owner, does not. A reconcile does
// not send a file again for that; a chmod through the mount does.
const FindMetaDiffers FindingKind = "metadata_differs"

// Finding is one path that is not proven identical.
type Finding struct {
	Kind FindingKind
	Rel  string // the path below both roots
	Src  string // as shown to the user; "" for FindOnlyDst
	Dst  string // "" for FindOnlySrc
	// Reasons, for FindDiffers: "size 10 != 12", "content differs",
	// "mtime differs (…)"; for FindNotCheckable: why.
	Reasons []string
	Err     error // FindError, FindSkipped
}

// VerifySummary counts a verify run. Identical reports whether it proved
// SRC and DST the same.
type VerifySummary struct {
	Checked      int64 // paths on both sides, compared
	Differ       int64
	MetaDiffer   int64 // FindMetaDiffers: only the mode or owner differs
	OnlySrc      int64
	OnlyDst      int64
	NotCheckable int64 // content not comparable (counted, not a difference)
	Errors       int64
	Skipped      int64
	// NoMtime counts pairs compared without mtime: an object had no
	// x-amz-meta-mtime.
	NoMtime int64
	// Hashed counts local files read for their checksum; HashCached those
	// answered by the checksum cache instead.
	Hashed, HashCached int64
}

// Identical reports whether the run found no difference and no error.
func (s VerifySummary) Identical() bool {
	return s.Differ == 0 && s.MetaDiffer == 0 && s.OnlySrc == 0 && s.OnlyDst == 0 && s.Errors == 0
}

// verifyJob is one path of the merge, checked in the background and
// reported in key order.
type verifyJob struct {
	s, d     entry
	hasS     bool
	hasD     bool
	done     chan struct{}
	finding  *Finding
	compared bool // on both sides: counted as checked
	noMtime  bool // compared without mtime
	unknown  bool // content could not be compared
}

// Verify compares SRC and DST by size, stored mtime and content, and reports
// each path that differs through opts.Report, in key order. Either side may
// be a local directory or a bucket prefix; r may be nil when both are local.
// It returns an error only when the run as a whole could not be done (a
// listing failed, a root is missing).
//
// Memory stays flat: both sides stream in key order, and at most a window of
// pairs (four times the concurrency) is in flight between the merge and the
// in-order report.
func Verify(ctx context.Context, r Remote, src, dst Endpoint, opts VerifyOptions) (VerifySummary, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Report == nil {
		opts.Report = func(Finding) {}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v := &verifier{r: r, src: src, dst: dst, h: newHasher(opts.Sums), ctx: ctx, owner: opts.Owner}
	order := make(chan *verifyJob, 4*opts.Concurrency)
	var sum VerifySummary
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for j := range order {
			<-j.done
			sum.add(j)
			if j.finding != nil {
				opts.Report(*j.finding)
			}
		}
	}()
	defer func() {
		if order != nil {
			close(order)
			<-reported
		}
	}()
	// The walks are pulled by the merge loop below, so their warnings
	// arrive on this goroutine, in key order.
	warn := func(isSrc bool) func(string, error) {
		return func(path string, err error) {
			f := &Finding{Kind: FindSkipped, Err: err}
			if isSrc {
				f.Src = path
			} else {
				f.Dst = path
			}
			j := &verifyJob{done: make(chan struct{}), finding: f}
			close(j.done)
			order <- j
		}
	}
	mode := Options{NoFollow: opts.NoFollow, Links: opts.Links}.symlinks()
	srcS, err := v.open(src, mode, warn(true))
	if err != nil {
		return VerifySummary{}, fmt.Errorf("SRC: %w", err)
	}
	dstS, err := v.open(dst, mode, warn(false))
	if err != nil {
		return VerifySummary{}, fmt.Errorf("DST: %w", err)
	}
	if !opts.Filters.Empty() {
		srcS = filtered{srcS, opts.Filters}
		dstS = filtered{dstS, opts.Filters}
	}

	p := newPool(opts.Concurrency)
	s, sok := srcS.next()
	d, dok := dstS.next()
	for (sok || dok) && ctx.Err() == nil {
		j := &verifyJob{done: make(chan struct{})}
		switch {
		case sok && (!dok || s.rel < d.rel):
			j.s, j.hasS = s, true
		case dok && (!sok || d.rel < s.rel):
			j.d, j.hasD = d, true
		default:
			j.s, j.hasS, j.d, j.hasD = s, true, d, true
		}
		if v.quick(j) || !p.submit(ctx, func() { v.check(j); close(j.done) }) {
			close(j.done)
		}
		order <- j
		if j.hasS {
			s, sok = srcS.next()
		}
		if j.hasD {
			d, dok = dstS.next()
		}
	}
	p.wait()
	close(order)
	<-reported
	order = nil
	sum.Hashed, sum.HashCached = v.h.hashed.Load(), v.h.cached.Load()
	if err := srcS.err(); err != nil {
		return sum, fmt.Errorf("SRC: %w", err)
	}
	if err := dstS.err(); err != nil {
		return sum, fmt.Errorf("DST: %w", err)
	}
	return sum, ctx.Err()
}

const contentNotCheckable = "content not checkable"

func (s *VerifySummary) add(j *verifyJob) {
	if j.compared {
		s.Checked++
	}
	if j.noMtime {
		s.NoMtime++
	}
	if j.unknown {
		s.NotCheckable++
	}
	if j.finding == nil {
		return
	}
	switch j.finding.Kind {
	case FindDiffers:
		s.Differ++
	case FindMetaDiffers:
		s.MetaDiffer++
	case FindOnlySrc:
		s.OnlySrc++
	case FindOnlyDst:
		s.OnlyDst++
	case FindError:
		s.Errors++
	case FindSkipped:
		s.Skipped++
	}
}

type verifier struct {
	r        Remote
	src, dst Endpoint
	h        *hasher
	ctx      context.Context
	owner    bool // compare uid and gid too
}

func (v *verifier) open(e Endpoint, mode walk.Links, warn func(string, error)) (stream, error) {
	if e.IsS3 {
		if v.r == nil {
			return nil, fmt.Errorf("%s: no S3 client", e.Arg)
		}
		s := newS3Stream(v.ctx, v.r, e.S3)
		return s, nil
	}
	w, err := newWalk(e.Local, mode, false, warn)
	if err != nil {
		return nil, err
	}
	return &localStream{w}, nil
}

// quick decides what needs no HEAD and no hashing: a path on one side only,
// or sizes that differ.
func (v *verifier) quick(j *verifyJob) bool {
	if v.quickMarker(j) {
		return true
	}
	switch {
	case !j.hasD:
		j.finding = &Finding{Kind: FindOnlySrc, Rel: j.s.rel, Src: v.src.Show(j.s.rel)}
	case !j.hasS:
		j.finding = &Finding{Kind: FindOnlyDst, Rel: j.d.rel, Dst: v.dst.Show(j.d.rel)}
	case j.s.size != j.d.size:
		j.compared = true
		j.finding = v.differs(j, fmt.Sprintf("size %d != %d", j.s.size, j.d.size))
	default:
		return false
	}
	return true
}

func (v *verifier) differs(j *verifyJob, reasons ...string) *Finding {
	return &Finding{Kind: FindDiffers, Rel: j.s.rel, Src: v.src.Show(j.s.rel), Dst: v.dst.Show(j.s.rel), Reasons: reasons}
}

// side is what one side stores of a path.
type side struct {
	size  int64
	mtime time.Time // zero: not stored
	c     content
	posix remote.Posix // an object's metadata; a local file's own (links: none)
}

// look gathers one side: a HEAD for an object (its x-amz-meta-mtime and
// stored checksum), the checksums of a local file.
func (v *verifier) look(e Endpoint, en entry) (side, error) {
	if e.IsS3 {
		info, err := v.r.Head(v.ctx, e.S3.Bucket, e.S3.Prefix+en.rel)
		if err != nil {
			return side{}, err
		}
		return side{size: info.Size, mtime: info.Mtime, c: objectContent(info.ETag).withHead(info), posix: info.Posix}, nil
	}
	if en.link {
		c, size, mtime, err := linkContent(v.ctx, ByPath(en.path))
		return side{size: size, mtime: mtime, c: c}, err
	}
	d, st, err := v.h.sum(v.ctx, en.path, en.rel)
	if err != nil {
		return side{}, err
	}
	p, err := localPosix(en.path)
	if err != nil {
		return side{}, err
	}
	return side{size: st.Size, mtime: time.Unix(0, st.Mtime), c: localContent(d), posix: p}, nil
}

func (v *verifier) check(j *verifyJob) {
	j.compared = true
	a, err := v.look(v.src, j.s)
	if err == nil {
		var b side
		if b, err = v.look(v.dst, j.d); err == nil {
			j.finding = v.judge(j, a, b)
			return
		}
	}
	j.finding = &Finding{Kind: FindError, Rel: j.s.rel, Src: v.src.Show(j.s.rel), Dst: v.dst.Show(j.s.rel), Err: err}
}

func (v *verifier) judge(j *verifyJob, a, b side) *Finding {
	if a.size != b.size { // changed since the listing
		return v.differs(j, fmt.Sprintf("size %d != %d", a.size, b.size))
	}
	var reasons []string
	same, known := sameContent(a.c, b.c)
	if known && !same {
		reasons = append(reasons, "content differs")
	}
	switch {
	case a.mtime.IsZero() || b.mtime.IsZero():
		j.noMtime = true
	case !sameTime(a.mtime, b.mtime):
		reasons = append(reasons, fmt.Sprintf("mtime differs (%s != %s)", showTime(a.mtime), showTime(b.mtime)))
	}
	meta := v.judgeMeta(a.posix, b.posix)
	if !known {
		j.unknown = true
		if len(reasons) == 0 && len(meta) == 0 {
			return &Finding{Kind: FindNotCheckable, Rel: j.s.rel, Src: v.src.Show(j.s.rel), Dst: v.dst.Show(j.s.rel),
				Reasons: []string{contentNotCheckable + " (" + whyUnknown(a.c, b.c) + ")"}}
		}
	}
	if len(reasons) == 0 && len(meta) == 0 {
		return nil
	}
	kind := FindDiffers
	if len(reasons) == 0 {
		kind = FindMetaDiffers
	}
	reasons = append(reasons, meta...)
	if !known {
		reasons = append(reasons, contentNotCheckable)
	}
	f := v.differs(j, reasons...)
	f.Kind = kind
	return f
}

// judgeMeta compares what a restore gives a file besides its content: the
// permission bits (07777) where both sides know them, which is where an
// object is compared (a HEAD is made for the checksum anyway) and carries
// x-amz-meta-mode, and, with --owner, uid and gid. Two local directories
// are not compared so: a copy made without -p is not wrong.
func (v *verifier) judgeMeta(a, b remote.Posix) []string {
	if !v.src.IsS3 && !v.dst.IsS3 {
		return nil
	}
	var out []string
	if a.HasMode && b.HasMode && a.Mode&0o7777 != b.Mode&0o7777 {
		out = append(out, fmt.Sprintf("mode %04o != %04o", a.Mode&0o7777, b.Mode&0o7777))
	}
	if v.owner && a.HasUID && b.HasUID && a.UID != b.UID {
		out = append(out, fmt.Sprintf("uid %d != %d", a.UID, b.UID))
	}
	if v.owner && a.HasGID && b.HasGID && a.GID != b.GID {
		out = append(out, fmt.Sprintf("gid %d != %d", a.GID, b.GID))
	}
	return out
}

// localPosix is the mode and owner of the file at path as an upload reads
// them: of the file opened, so a followed symlink's target's.
func localPosix(path string) (remote.Posix, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return remote.Posix{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return remote.FilePosix(st.Mode, st.Uid, st.Gid), nil
}

func showTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// sameTime compares two stored mtimes to the precision of the coarser: a
// time with no digits below the millisecond was stored to the millisecond
// (a filesystem's granularity, another tool's x-amz-meta-mtime), and the
// other side can say no more than that.
func sameTime(a, b time.Time) bool {
	p := max(precision(a), precision(b))
	return a.Truncate(p).Equal(b.Truncate(p))
}

func precision(t time.Time) time.Duration {
	p := time.Duration(1)
	for ns := t.Nanosecond(); p < time.Second && ns%10 == 0; ns /= 10 {
		p *= 10
	}
	return p
}
