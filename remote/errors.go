package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Sentinel errors callers branch on. Every error this package returns wraps
// at most one of them, plus the original error.
var (
	ErrNotFound       = errors.New("no such key")
	ErrNoSuchBucket   = errors.New("bucket does not exist")
	ErrAccessDenied   = errors.New("access denied")
	ErrBadCredentials = errors.New("credentials rejected")
	ErrUnreachable    = errors.New("endpoint unreachable")
	ErrBucketNotEmpty = errors.New("bucket not empty")
	ErrBucketExists   = errors.New("bucket name already taken")
	ErrInvalidRequest = errors.New("request refused by the store")
	ErrNotImplemented = errors.New("not implemented by this store")
	ErrChanged        = errors.New("object changed during transfer")
	// ErrConflict: a write or delete conditional on its destination
	// (PutOptions.IfMatch, IfNoneMatch, DeleteItem.ETag) found another
	// version there than the one expected: another writer's. Nothing was
	// written or deleted.
	ErrConflict      = errors.New("the object holds another writer's version")
	ErrNoCredentials = errors.New("no credentials found")
	ErrClockSkew     = errors.New("request time rejected: this machine's clock is off")
	// ErrBadDigest: the body did not match the checksum sent with it (the
	// file changed while it was read). Retrying can help.
	ErrBadDigest = errors.New("body did not match the checksum sent with it")
)

// Error is an S3 failure with where it happened.
type Error struct {
	Op     string // "upload", "list", …
	Bucket string
	Key    string
	Kind   error // one of the sentinels, or nil
	Err    error // the SDK's error
}

func (e *Error) Error() string {
	where := ""
	if e.Bucket != "" {
		where = " s3://" + e.Bucket
		if e.Key != "" {
			where += "/" + e.Key
		}
	}
	detail := e.detail()
	if e.Kind == nil {
		return fmt.Sprintf("%s%s: %s", e.Op, where, detail)
	}
	hint := hints[e.Kind]
	if hint != "" {
		hint = " (" + hint + ")"
	}
	if detail == "" {
		return fmt.Sprintf("%s%s: %v%s", e.Op, where, e.Kind, hint)
	}
	return fmt.Sprintf("%s%s: %v%s: %s", e.Op, where, e.Kind, hint, detail)
}

// detail is the store's own words, without request IDs and SDK plumbing.
func (e *Error) detail() string {
	if e.Kind == ErrNoCredentials {
		return ""
	}
	var api smithy.APIError
	if errors.As(e.Err, &api) {
		if msg := api.ErrorMessage(); msg != "" && msg != api.ErrorCode() {
			return api.ErrorCode() + ": " + msg
		}
		return api.ErrorCode()
	}
	var op *net.OpError
	if errors.As(e.Err, &op) {
		return op.Err.Error()
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return ""
}

func (e *Error) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

var hints = map[error]string{
	ErrNoSuchBucket:   "check the bucket name, or create it with `s3sync mb`",
	ErrAccessDenied:   "the credentials lack permission for this",
	ErrBadCredentials: "check the access key and secret, or --profile",
	ErrUnreachable:    "check --endpoint-url and the network",
	ErrBucketNotEmpty: "use --force to delete its objects first",
	ErrNoCredentials:  "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use --profile with a profile from ~/.aws/credentials",
	ErrClockSkew:      "check this machine's clock (timedatectl / chrony)",
	ErrBadDigest:      "the file changed while it was read",
	ErrConflict:       "changed by someone else since this side last saw it",
}

// wrap maps an SDK error once into an *Error; nil stays nil, and a
// cancellation stays a plain context error.
func wrap(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	return &Error{Op: op, Bucket: bucket, Key: key, Kind: classify(err), Err: err}
}

func classify(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		if k := classifySSE(api.ErrorCode()); k != nil {
			return k
		}
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return ErrNotFound
		case "NoSuchBucket":
			return ErrNoSuchBucket
		case "AccessDenied", "AllAccessDisabled", "Forbidden", "AccountProblem":
			return ErrAccessDenied
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "InvalidSecurity":
			return ErrBadCredentials
		case "RequestTimeTooSkewed", "RequestExpired":
			return ErrClockSkew
		case "BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "InvalidChecksum":
			return ErrBadDigest
		case "BucketNotEmpty":
			return ErrBucketNotEmpty
		case "BucketAlreadyExists":
			return ErrBucketExists
		case "NotImplemented", "XNotImplemented":
			return ErrNotImplemented
		case "PreconditionFailed":
			return ErrChanged
		case "ConditionalRequestConflict":
			// 409: another conditional write to the key is in progress.
			// Nothing was stored; retrying decides.
			return nil
		case "KeyTooLongError", "InvalidArgument", "InvalidRequest", "EntityTooLarge", "InvalidObjectName",
			"InvalidStorageClass", "MetadataTooLarge", "InvalidBucketName", "MethodNotAllowed":
			return ErrInvalidRequest
		}
		switch statusOf(err) {
		case http.StatusForbidden:
			return ErrAccessDenied
		case http.StatusNotFound:
			return ErrNotFound
		case http.StatusNotImplemented:
			return ErrNotImplemented
		case http.StatusPreconditionFailed:
			return ErrChanged
		}
		return nil
	}
	if isNoCredentials(err) {
		return ErrNoCredentials
	}
	var dns *net.DNSError
	var op *net.OpError
	if errors.As(err, &dns) || errors.As(err, &op) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return ErrUnreachable
	}
	// What is left of the network: the SDK's "could not send" and the
	// deadlines of conn.go (a stalled connection, no response headers).
	var rerr interface{ RetryableError() bool }
	var cerr interface{ ConnectionError() bool }
	var terr interface{ Timeout() bool }
	if errors.As(err, &rerr) && rerr.RetryableError() || errors.As(err, &cerr) && cerr.ConnectionError() ||
		errors.As(err, &terr) && terr.Timeout() {
		return ErrUnreachable
	}
	return nil
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// IsPermanent reports whether retrying err cannot help: the request itself
// or the bucket is wrong. The global troubles of IsGlobal are not
// permanent: they heal without anything changing in the request.
func IsPermanent(err error) bool {
	for _, k := range []error{ErrNotFound, ErrNoSuchBucket, ErrAccessDenied, ErrInvalidRequest, ErrNotImplemented, ErrBucketNotEmpty, ErrBucketExists} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// IsGlobal reports whether err is trouble of the whole client, not of the
// object at hand: the endpoint is unreachable (or stalls), the credentials
// are missing, rejected or expired, or this machine's clock is off.
// Retrying this object alone cannot help and neither can failing it: the
// whole drain should pause (and, for credentials, Client.ReloadCredentials
// picks up fixed ones).
func IsGlobal(err error) bool {
	for _, k := range []error{ErrUnreachable, ErrBadCredentials, ErrNoCredentials, ErrClockSkew} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}

// isNoCredentials recognises the SDK's failure to find any credentials,
// which reaches us as an error from its identity step, not an API error.
func isNoCredentials(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "get identity: get credentials") || strings.Contains(msg, "failed to refresh cached credentials")
}

func kindForCode(code string) error {
	switch code {
	case "AccessDenied":
		return ErrAccessDenied
	case "NoSuchKey":
		return ErrNotFound
	case "PreconditionFailed":
		return ErrConflict
	}
	return nil
}
