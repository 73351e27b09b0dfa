package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Conditional writes and deletes: another machine may write the same keys.
// A write conditional on the version this side last saw (If-Match: ETag,
// or If-None-Match: * for a key it believes absent) never replaces another
// writer's version; the store answers 412, which this package returns as
// ErrConflict. Not every store honours every condition: ProbeConditions
// finds out which.

// MetaWriter is the metadata key of PutOptions.Writer.
const MetaWriter = "s3sync-writer"

// conditions renders o's destination conditions as request headers.
func (o PutOptions) conditions() (ifMatch, ifNoneMatch *string) {
	if o.IfMatch != "" {
		ifMatch = aws.String(o.IfMatch)
	}
	if o.IfNoneMatch {
		ifNoneMatch = aws.String("*")
	}
	return ifMatch, ifNoneMatch
}

func (o PutOptions) conditional() bool { return o.IfMatch != "" || o.IfNoneMatch }

// destCondition turns a 412 to a write with destination conditions into
// ErrConflict: the other 412 of this package (ErrChanged) is about a
// source.
func destCondition(err error, o PutOptions) error {
	var e *Error
	if o.conditional() && errors.As(err, &e) && e.Kind == ErrChanged {
		e.Kind = ErrConflict
	}
	return err
}

// copyCondition is destCondition for a copy: with a source condition too,
// a 412 cannot say which failed and stays ErrChanged (the caller, which
// then uploads, learns the rest from that upload's own condition).
func copyCondition(err error, o PutOptions) error {
	if o.SourceETag != "" {
		return err
	}
	return destCondition(err, o)
}

// DeleteItem is a key to delete and, when ETag is set, the version it must
// still hold: another is left in place (ErrConflict).
type DeleteItem struct {
	Key  string
	ETag string
}

// DeleteIf removes items from bucket: in batches of 1,000 (DeleteObjects,
// each item's ETag in its ObjectIdentifier), or with single one
// DeleteObject per item (If-Match), for stores that honour the condition
// only there (see Conditions). Items that could not be deleted are returned
// with their errors, sorted by key; a condition that failed is ErrConflict.
// A key already gone is not an error. err is for a request as a whole
// (every key it carried is then reported as failed too).
func (c *Client) DeleteIf(ctx context.Context, bucket string, items []DeleteItem, single bool) ([]DeleteError, error) {
	failed, err := c.deleteIf(ctx, bucket, items, single)
	c.observe(Transfer{Op: OpDelete, Keys: len(items), Failed: failed, Err: err})
	return failed, err
}

// deleteIf is DeleteIf unobserved, for the client's own requests.
func (c *Client) deleteIf(ctx context.Context, bucket string, items []DeleteItem, single bool) ([]DeleteError, error) {
	var failed []DeleteError
	var firstErr error
	if single {
		for i, it := range items {
			in := &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(it.Key)}
			if it.ETag != "" {
				in.IfMatch = aws.String(it.ETag)
			}
			_, err := c.s3.DeleteObject(ctx, in)
			err = wrap("delete", bucket, it.Key, err)
			var e *Error
			if errors.As(err, &e) && e.Kind == ErrChanged {
				e.Kind = ErrConflict
			}
			if err == nil || errors.Is(err, ErrNotFound) {
				continue
			}
			failed = append(failed, DeleteError{Key: it.Key, Err: err})
			if IsGlobal(err) || ctx.Err() != nil {
				// The rest would fail the same way.
				firstErr = err
				for _, rest := range items[i+1:] {
					failed = append(failed, DeleteError{Key: rest.Key, Err: err})
				}
				break
			}
		}
		sort.Slice(failed, func(i, j int) bool { return failed[i].Key < failed[j].Key })
		return failed, firstErr
	}
	for start := 0; start < len(items); start += 1000 {
		batch := items[start:min(start+1000, len(items))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, it := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(it.Key)}
			if it.ETag != "" {
				ids[i].ETag = aws.String(it.ETag)
			}
		}
		out, err := c.s3.DeleteObjects(withLoad(ctx, load{objects: len(batch)}), &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			err = wrap("delete", bucket, batch[0].Key, err)
			if firstErr == nil {
				firstErr = err
			}
			for _, it := range batch {
				failed = append(failed, DeleteError{Key: it.Key, Err: err})
			}
			continue
		}
		for _, e := range out.Errors {
			k := aws.ToString(e.Key)
			kind := kindForCode(aws.ToString(e.Code))
			if kind == ErrNotFound {
				continue
			}
			failed = append(failed, DeleteError{Key: k, Err: &Error{Op: "delete", Bucket: bucket, Key: k,
				Kind: kind, Err: errors.New(aws.ToString(e.Code) + ": " + aws.ToString(e.Message))}})
		}
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Key < failed[j].Key })
	return failed, firstErr
}

// Conditions says which conditional requests a store honours. One that
// ignores a condition does the write or delete anyway: a blind overwrite.
type Conditions struct {
	// Put: If-Match and If-None-Match on PutObject and
	// CompleteMultipartUpload.
	Put bool `json:"put"`
	// Copy: the same on CopyObject's destination.
	Copy bool `json:"copy"`
	// Delete: If-Match on DeleteObject.
	Delete bool `json:"delete"`
	// BatchDelete: an ETag per object in DeleteObjects.
	BatchDelete bool `json:"batch_delete"`
}

// ProbePrefix starts the key ProbeConditions writes and removes: a name
// nobody's files have.
const ProbePrefix = ".s3sync-probe-"

// ProbeConditions learns which conditions the store honours, with a few
// requests on one probe object under prefix (removed before it returns):
// each condition is sent so that it must fail, and a store that honours it
// refuses the request. An error means the store could not be asked (the
// probe object could not be written).
func (c *Client) ProbeConditions(ctx context.Context, bucket, prefix string) (Conditions, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	key := prefix + ProbePrefix + hex.EncodeToString(rnd[:])
	const wrong = `"00000000000000000000000000000000"`
	put := func(o PutOptions) error {
		_, err := c.upload(ctx, bucket, key, strings.NewReader("probe"), 5, o)
		return err
	}
	refused := func(err error) bool {
		return errors.Is(err, ErrConflict) || errors.Is(err, ErrChanged)
	}
	var got Conditions
	if err := put(PutOptions{}); err != nil {
		return got, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		c.s3.DeleteObject(cctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	}()
	err := put(PutOptions{IfNoneMatch: true})
	got.Put = refused(err)
	if err != nil && !refused(err) {
		return got, err
	}
	_, err = c.copy(ctx, bucket, key, bucket, key, 5, PutOptions{IfNoneMatch: true, Mtime: time.Unix(1, 0)})
	got.Copy = refused(err)
	failed, err := c.deleteIf(ctx, bucket, []DeleteItem{{Key: key, ETag: wrong}}, false)
	if err != nil {
		return got, err
	}
	got.BatchDelete = len(failed) == 1 && refused(failed[0].Err)
	if !got.BatchDelete {
		if err := put(PutOptions{}); err != nil { // deleted: put it back
			return got, err
		}
	}
	failed, err = c.deleteIf(ctx, bucket, []DeleteItem{{Key: key, ETag: wrong}}, true)
	if err != nil {
		return got, err
	}
	got.Delete = len(failed) == 1 && refused(failed[0].Err)
	return got, nil
}
