package remote

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go/middleware"
)

// RequestObserver is told of every request the client sends (each attempt,
// retries included): the S3 operation ("PutObject", "HeadObject", …), the
// time from sending it to having read the answer's headers (a GET's body is
// read later, by the caller), and the attempt's error, nil when the store
// said yes. It is called concurrently and must not block.
type RequestObserver func(operation string, d time.Duration, err error)

// observeRequests times each attempt: in the deserialize step, which the
// SDK's retry loop (finalize step) runs once per attempt.
func observeRequests(obs RequestObserver) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("s3sync.ObserveRequest",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				start := time.Now()
				out, md, err := next.HandleDeserialize(ctx, in)
				obs(middleware.GetOperationName(ctx), time.Since(start), err)
				return out, md, err
			}), middleware.Before)
	}
}

// The transfer operations a TransferObserver is told of.
const (
	OpUpload   = "upload"   // Upload
	OpCopy     = "copy"     // Copy
	OpDownload = "download" // Download
	OpDelete   = "delete"   // Delete and DeleteIf
)

// Transfer is one call of Upload, Copy, Download, Delete or DeleteIf, as it
// returned.
type Transfer struct {
	Op string // OpUpload, OpCopy, OpDownload or OpDelete
	// Size is an upload's or a copy's object size (whatever the outcome),
	// a download's bytes written to its writer.
	Size int64
	// Keys is how many keys a delete was asked to remove, Failed those it
	// returned as not removed (each with its error).
	Keys   int
	Failed []DeleteError
	// CheckRefused: the upload failed after PutOptions.Check said no (the
	// caller's file changed while it was read).
	CheckRefused bool
	// Err is what the call returned: for a delete, the error of a request
	// as a whole (its keys are in Failed too).
	Err error
}

// TransferObserver is told of every Upload, Copy, Download, Delete and
// DeleteIf call, once, as it returns: a multipart upload or a batch delete
// of many keys is one Transfer. Requests the client makes for its own
// methods (ProbeConditions, RemoveBucket) are not transfers. It is called
// concurrently and must not block.
type TransferObserver func(Transfer)

// observe tells the TransferObserver, if there is one, of t.
func (c *Client) observe(t Transfer) {
	if obs := c.cfg.ObserveTransfer; obs != nil {
		obs(t)
	}
}

// observeUpload prepares o for an Upload of size bytes to be observed; the
// func it returns tells the observer how the upload ended. It notes whether
// o.Check refused the upload: its error is the caller's own, which the
// observer cannot tell from a store's by itself.
func (c *Client) observeUpload(size int64, o *PutOptions) func(error) {
	if c.cfg.ObserveTransfer == nil {
		return func(error) {}
	}
	var refused atomic.Bool
	if check := o.Check; check != nil {
		o.Check = func() error {
			err := check()
			refused.Store(err != nil)
			return err
		}
	}
	return func(err error) {
		c.observe(Transfer{Op: OpUpload, Size: size, Err: err, CheckRefused: err != nil && refused.Load()})
	}
}
