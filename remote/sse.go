package remote

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Server-side encryption, as the AWS CLI's --sse, --sse-kms-key-id,
// --sse-c, --sse-c-key and --sse-c-copy-source-key set it. The store
// encrypts; this side only says how, on every request that writes (and,
// for SSE-C, reads) an object.

// SSE is how uploads and copies are encrypted at rest, and the customer
// keys that reads and copies of SSE-C objects need.
type SSE struct {
	// Algorithm is "" (the bucket's default), "AES256" (SSE-S3) or
	// "aws:kms" (SSE-KMS, with KMSKeyID or the account's default key).
	Algorithm string
	KMSKeyID  string
	// CustomerKey (SSE-C, AES256): the 32-byte key the store encrypts
	// uploads and copies with, and must be given to read them back.
	CustomerKey []byte
	// CopySourceKey (SSE-C): the key that decrypts a copy's source.
	CopySourceKey []byte
}

// SSE algorithms, as S3 spells them.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// CustomerKeySize is the length of an SSE-C key: AES-256.
const CustomerKeySize = 32

// ErrKeyInClear: an SSE-C key would travel unencrypted.
var ErrKeyInClear = errors.New("an SSE-C key is sent with every request, and this endpoint is not https://")

func (s SSE) hasKey() bool { return len(s.CustomerKey) > 0 || len(s.CopySourceKey) > 0 }

// checkKeyTransport refuses an SSE-C key for a plain-HTTP endpoint other
// than this machine: the key would cross the network in clear text (S3
// itself refuses SSE-C over HTTP).
func (s SSE) checkKeyTransport(endpoint string) error {
	if !s.hasKey() || endpoint == "" || isLoopback(endpoint) {
		return nil
	}
	if u, err := url.Parse(endpoint); err == nil && strings.EqualFold(u.Scheme, "https") {
		return nil
	}
	return fmt.Errorf("%s: %w", endpoint, ErrKeyInClear)
}

// setCustomerKey fills the three headers of an SSE-C key: algorithm, the
// key in base64, and its MD5 (the SDK computes neither).
func setCustomerKey(key []byte, alg, k, sum **string) {
	if len(key) == 0 {
		return
	}
	m := md5.Sum(key)
	*alg = aws.String(SSEAES256)
	*k = aws.String(base64.StdEncoding.EncodeToString(key))
	*sum = aws.String(base64.StdEncoding.EncodeToString(m[:]))
}

// sseWrite fills the encryption of a request that creates an object:
// PutObject, CreateMultipartUpload, CopyObject.
func (c *Client) sseWrite(enc *types.ServerSideEncryption, kmsKey **string, alg, k, sum **string) {
	s := c.cfg.SSE
	if s.Algorithm != "" {
		*enc = types.ServerSideEncryption(s.Algorithm)
		if s.KMSKeyID != "" {
			*kmsKey = aws.String(s.KMSKeyID)
		}
	}
	setCustomerKey(s.CustomerKey, alg, k, sum)
}

// sseKey fills the SSE-C key of a request on an object this side writes
// or reads: UploadPart, ListParts, CompleteMultipartUpload, GetObject,
// HeadObject.
func (c *Client) sseKey(alg, k, sum **string) {
	setCustomerKey(c.cfg.SSE.CustomerKey, alg, k, sum)
}

// sseCopySource fills the SSE-C key that decrypts a copy's source.
func (c *Client) sseCopySource(alg, k, sum **string) {
	setCustomerKey(c.cfg.SSE.CopySourceKey, alg, k, sum)
}

// confirmSSE checks that the store's answer to a write says the object is
// encrypted as asked. A store that ignores the headers (Versity Gateway
// does) stores plain text: that is said once, loudly, rather than never.
func (c *Client) confirmSSE(bucket, key string, enc types.ServerSideEncryption, alg *string) {
	s := c.cfg.SSE
	var missing string
	switch {
	case s.Algorithm != "" && string(enc) != s.Algorithm:
		missing = fmt.Sprintf("asked for %s, the store answered %q", s.Algorithm, string(enc))
	case len(s.CustomerKey) > 0 && aws.ToString(alg) == "":
		missing = "asked for SSE-C, the store did not confirm it"
	default:
		return
	}
	c.sseWarn.Do(func() {
		slog.Warn("the store did not confirm server-side encryption: objects may be stored unencrypted (this store may not support it)",
			"object", "s3://"+bucket+"/"+key, "detail", missing)
	})
}

// encryptionOf is Info.Encryption from a GET's or HEAD's answer.
func encryptionOf(enc types.ServerSideEncryption, customerAlg *string) string {
	if aws.ToString(customerAlg) != "" {
		return "SSE-C"
	}
	return string(enc)
}

// ETagMayBeMD5 reports whether the object's ETag can be the MD5 of its
// content, as it is for a single-part upload stored in plain text or with
// SSE-S3; with SSE-KMS, DSSE-KMS or SSE-C it is not.
func (i Info) ETagMayBeMD5() bool {
	return i.Encryption == "" || i.Encryption == SSEAES256
}

// classifySSE maps the store's errors about encryption: a KMS key that is
// missing, disabled or not allowed cannot heal by retrying.
func classifySSE(code string) error {
	switch code {
	case "KMS.NotFoundException", "KMS.DisabledException", "KMS.InvalidKeyUsageException",
		"KMS.KMSInvalidStateException", "KMS.InvalidStateException":
		return ErrInvalidRequest
	case "KMS.AccessDeniedException":
		return ErrAccessDenied
	}
	return nil
}
