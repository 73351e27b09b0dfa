// Package remote is the S3 boundary: it turns s3sync's few needs (list,
// upload, download, copy, delete, buckets) into aws-sdk-go-v2 calls, and maps
// S3's errors once into the sentinel errors the rest of the program branches
// on. It knows nothing of the journal, the cache or FUSE.
package remote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
)

// Object is one entry of a listing: everything a listing answers without a
// request per object.
type Object struct {
	Key          string
	Size         int64
	LastModified time.Time
	ETag         string
	StorageClass string
}

// Info is what a HEAD or GET answers beyond a listing.
type Info struct {
	Object
	// Mtime is the source file's modification time stored as
	// x-amz-meta-mtime; zero when the object has none.
	Mtime    time.Time
	Metadata map[string]string
	// Posix is the mode and owner the metadata holds (see ParsePosix);
	// PosixErr says which of them were malformed and left out.
	Posix    Posix
	PosixErr error
	// Checksum is the stored full-object CRC64NVME (base64), "" when the
	// store keeps none; ChecksumType is FULL_OBJECT or COMPOSITE (a
	// checksum of the parts' checksums, which says nothing of the whole).
	Checksum     string
	ChecksumType string
	// Encryption is the object's server-side encryption as the store
	// answered it: "" (none said), "AES256", "aws:kms", "aws:kms:dsse" or
	// "SSE-C". See ETagMayBeMD5.
	Encryption string
}

// PutOptions apply to uploads and copies.
type PutOptions struct {
	StorageClass string    // "" leaves the store's default
	Mtime        time.Time // stored as x-amz-meta-mtime when not zero
	ContentType  string
	// Posix is stored as x-amz-meta-mode, -uid and -gid, with Mtime (a
	// copy replaces the source's metadata only when Mtime is set).
	Posix Posix
	// Check (uploads) is called once the body was hashed and before the
	// object becomes visible; an error aborts the upload (see Upload).
	Check func() error
	// ResumeID (multipart uploads) continues an earlier upload of the same
	// content: its finished parts whose size and checksum match are not
	// sent again. An upload id the store no longer knows starts afresh.
	ResumeID string
	// OnCreate (multipart uploads) is called with the new upload's id
	// before any part is sent, so the caller can keep it for a resume.
	// With OnCreate set, an upload cut off by cancellation is left for
	// resuming rather than aborted.
	OnCreate func(uploadID string) error
	// SourceETag (copies) makes the copy conditional: the source must still
	// have this ETag (x-amz-copy-source-if-match), else ErrChanged.
	SourceETag string
	// IfMatch and IfNoneMatch make an upload or copy conditional on its
	// destination (see conditional.go): with IfMatch the key must still
	// hold this ETag, with IfNoneMatch it must not exist; else
	// ErrConflict (ErrNotFound for an IfMatch whose key is gone).
	IfMatch     string
	IfNoneMatch bool
	// Writer, when set, is stored as x-amz-meta-s3sync-writer (MetaWriter)
	// with Mtime: who wrote the object, so a writer can tell its own
	// earlier write (one whose answer it never got) from another's.
	Writer string
}

// Config selects credentials and endpoint the way the AWS CLI does.
type Config struct {
	Profile     string // --profile; "" uses AWS_PROFILE or "default"
	EndpointURL string // --endpoint-url; "" uses endpoint_url from the profile or AWS_ENDPOINT_URL(_S3)
	Region      string // --region; "" uses the profile/env, then us-east-1
	// MultipartThreshold is the size from which uploads use multipart
	// (default 8 MiB), PartSize the minimum part size (default 8 MiB).
	MultipartThreshold int64
	PartSize           int64
	// PartConcurrency bounds parts in flight per large transfer (default 8).
	PartConcurrency int
	// MaxConns sizes the HTTP connection pool (default 64).
	MaxConns int
	// MaxAttempts for retryable errors (default 5).
	MaxAttempts int
	// IdleTimeout fails a request when nothing moved on its connection,
	// in either direction, for this long (default 60s); a transfer that
	// keeps moving is never cut. ResponseTimeout bounds the wait for the
	// first byte of the answer to a small request once the store has it
	// (default 5s); requests that make the store take in, assemble or
	// copy many bytes wait longer, and each retry twice as long as the
	// attempt before (see deadline.go). Either comes back as
	// ErrUnreachable after the SDK's retries. See conn.go for why these
	// defaults.
	IdleTimeout     time.Duration
	ResponseTimeout time.Duration
	// ObserveRequest, if set, is told of every request sent (metrics).
	ObserveRequest RequestObserver
	// ObserveTransfer, if set, is told of every transfer a caller asked
	// for (metrics).
	ObserveTransfer TransferObserver
	// BwLimit, when set, paces every request and response body (see
	// bwlimit.go); one Limiter shared by all clients of a process.
	BwLimit *Limiter
	// SSE is the server-side encryption of uploads and copies, and the
	// customer key reads need (see sse.go).
	SSE SSE
}

// Client talks to one S3 endpoint. It is safe for concurrent use.
type Client struct {
	s3       *s3.Client
	cfg      Config
	region   string
	endpoint string
	// unsignedPayload: the endpoint is on this machine, where nothing
	// between us and the server could alter a body, so uploads skip the
	// payload SHA-256 that the signature would otherwise cover (and the
	// server would verify). Over HTTPS the SDK already does this.
	unsignedPayload bool
	// md5Mode: the store refused CRC64NVME checksums, so bodies carry
	// Content-MD5 instead.
	md5Mode atomic.Bool
	// loadOpts load the AWS configuration as New did, for
	// ReloadCredentials; creds is the provider it swaps.
	loadOpts []func(*config.LoadOptions) error
	creds    *swappableCreds
	// sseWarn: a store that did not confirm encryption is said once.
	sseWarn sync.Once
}

// isLoopback reports whether the endpoint URL names this machine.
func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// payloadOpts are per-call options for requests with a body.
func (c *Client) payloadOpts() []func(*s3.Options) {
	if !c.unsignedPayload {
		return nil
	}
	return []func(*s3.Options){func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}}
}

const (
	defaultThreshold = 8 << 20
	maxParts         = 10000
)

// maxCopyPart is the largest object CopyObject copies in one request (a
// variable for tests only).
var maxCopyPart int64 = 5 << 30

// New loads the AWS configuration chain and returns a client.
func New(ctx context.Context, c Config) (*Client, error) {
	if c.MultipartThreshold <= 0 {
		c.MultipartThreshold = defaultThreshold
	}
	if c.PartSize <= 0 {
		c.PartSize = defaultThreshold
	}
	if c.PartSize < 5<<20 {
		c.PartSize = 5 << 20
	}
	if c.PartConcurrency <= 0 {
		c.PartConcurrency = 8
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 64
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = defaultResponseTimeout
	}
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = c.MaxConns * 2
		t.MaxIdleConnsPerHost = c.MaxConns * 2
		t.MaxConnsPerHost = 0
		t.IdleConnTimeout = 90 * time.Second
		configureTransport(t, c.IdleTimeout, c.ResponseTimeout)
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = c.MaxAttempts
				o.MaxBackoff = 10 * time.Second
			})
		}),
		// The SDK's own log lines (IMDS fallbacks, checksum notes) would
		// break the one-line-per-problem output; errors reach us anyway.
		config.WithLogger(logging.Nop{}),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", classifyConfigErr(err))
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	endpoint := c.EndpointURL
	if endpoint == "" && awsCfg.BaseEndpoint != nil {
		endpoint = *awsCfg.BaseEndpoint
	}
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	cl := &Client{cfg: c, region: awsCfg.Region, endpoint: endpoint, unsignedPayload: isLoopback(endpoint), loadOpts: opts}
	if awsCfg.Credentials != nil {
		cl.creds = newSwappableCreds(awsCfg.Credentials)
		awsCfg.Credentials = cl.creds
	}
	cl.s3 = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// Custom endpoints (MinIO, Versity, Wasabi by IP, …) rarely
			// have wildcard DNS for virtual-hosted buckets.
			o.UsePathStyle = true
		}
		o.DisableLogOutputChecksumValidationSkipped = true
		o.HTTPSignerV4 = &freshSigner{}
		o.HTTPClient = answerClient{next: o.HTTPClient, base: c.ResponseTimeout}
		if c.ObserveRequest != nil {
			o.APIOptions = append(o.APIOptions, observeRequests(c.ObserveRequest))
		}
		if c.BwLimit != nil {
			// Here, not in LoadDefaultConfig: AWS_CA_BUNDLE needs the
			// SDK's own client type there.
			o.HTTPClient = limitedClient{next: o.HTTPClient, l: c.BwLimit}
		}
	})
	if ep := cl.s3.Options().BaseEndpoint; cl.endpoint == "" && ep != nil {
		// AWS_ENDPOINT_URL_S3 or a profile's services section, which the
		// S3 client resolves itself.
		cl.endpoint = *ep
	}
	if err := c.SSE.checkKeyTransport(cl.endpoint); err != nil {
		return nil, err
	}
	return cl, nil
}

// Region is the region requests are signed for.
func (c *Client) Region() string { return c.region }

// Endpoint is the custom endpoint in use, "" for AWS.
func (c *Client) Endpoint() string { return c.endpoint }

func classifyConfigErr(err error) error {
	var pe config.SharedConfigProfileNotExistError
	if errors.As(err, &pe) {
		return fmt.Errorf("profile %q not found in ~/.aws/config or ~/.aws/credentials: %w", pe.Profile, ErrBadCredentials)
	}
	return err
}

// FormatMtime renders t as rclone does for x-amz-meta-mtime: Unix seconds
// with up to nine fractional digits, trailing zeros dropped.
func FormatMtime(t time.Time) string {
	sec, nsec := t.Unix(), t.Nanosecond()
	if nsec == 0 {
		return strconv.FormatInt(sec, 10)
	}
	if sec < 0 {
		// Before 1970: rare enough that float precision will do.
		return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", nsec), "0")
	return strconv.FormatInt(sec, 10) + "." + frac
}

// ParseMtime reads x-amz-meta-mtime as rclone and s3sync write it (also
// accepts a plain integer, and more than nine fractional digits, truncated).
// A time outside what a timespec in nanoseconds holds (1678 to 2262) is
// refused: it would wrap (INT64_MAX seconds gave 1969).
func ParseMtime(s string) (time.Time, bool) {
	t, ok := parseMtime(s)
	if !ok || t.Before(minMtime) || t.After(maxMtime) {
		return time.Time{}, false
	}
	return t, true
}

var (
	minMtime = time.Unix(0, math.MinInt64)
	maxMtime = time.Unix(0, math.MaxInt64)
)

func parseMtime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		n, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	if neg {
		return time.Unix(-sec, -nsec), true
	}
	return time.Unix(sec, nsec), true
}
