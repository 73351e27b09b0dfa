package remote

import (
	"context"
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
