package syncer

import (
	"context"
	"fmt"

	"github.com/s3sync/s3sync/remote"
)

// reconcile --if-unchanged: for scripted two-way use, where another
// machine may write the destination between this run's listing and its
// writes. Each write and delete at an S3 destination is conditional on
// what the listing showed; a refusal is reported, counted as failed, and
// the other writer's version stays.

// listed is the condition for writing the destination entry d (exists:
// the listing had it), or none without --if-unchanged.
func (rc *run) listed(d entry, exists bool) Cond {
	if !rc.opts.IfUnchanged || !rc.dst.IsS3 {
		return Cond{}
	}
	if exists && d.etag != "" {
		return Cond{IfMatch: d.etag}
	}
	return Cond{IfNoneMatch: true}
}

// conflicted words a refused condition for the report.
func (rc *run) conflicted(err error, c Cond) error {
	if !c.Conditional() || !c.Refused(err) {
		return err
	}
	return fmt.Errorf("%w: the destination changed since this run listed it; not overwritten (--if-unchanged)", remote.ErrConflict)
}

// conditionProber is the remote's ProbeConditions, where it has one.
type conditionProber interface {
	ProbeConditions(ctx context.Context, bucket, prefix string) (remote.Conditions, error)
}

// deleteListed deletes keys; with --if-unchanged each only while it holds
// the ETag the listing showed (etags, by index), batched where the store
// honours that and one by one otherwise.
func (rc *run) deleteListed(keys, etags []string) []remote.DeleteError {
	if !rc.opts.IfUnchanged {
		failed, _ := rc.r.Delete(rc.ctx, rc.dst.S3.Bucket, keys)
		return failed
	}
	rc.probe.Do(func() {
		p, ok := rc.r.(conditionProber)
		if !ok {
			return
		}
		got, err := p.ProbeConditions(rc.ctx, rc.dst.S3.Bucket, rc.dst.S3.Prefix)
		if err != nil {
			return
		}
		rc.batchETag = got.BatchDelete
		if !got.Delete && !got.BatchDelete {
			rc.opts.Report(Event{Kind: EventWarning, Op: "delete", Src: rc.dst.Arg,
				Err: fmt.Errorf("this store ignores conditional deletes: --if-unchanged cannot keep a delete from removing another writer's newer version")})
		}
	})
	single := !rc.batchETag
	items := make([]remote.DeleteItem, len(keys))
	for i, k := range keys {
		items[i] = remote.DeleteItem{Key: k, ETag: etags[i]}
	}
	failed, _ := rc.r.DeleteIf(rc.ctx, rc.dst.S3.Bucket, items, single)
	for i, f := range failed {
		if c := (Cond{IfMatch: "listed"}); c.Refused(f.Err) {
			failed[i].Err = fmt.Errorf("%w: changed since this run listed it; not deleted (--if-unchanged)", remote.ErrConflict)
		}
	}
	return failed
}
