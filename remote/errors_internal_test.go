package remote

import (
	"errors"
	"testing"

	"github.com/aws/smithy-go"
)

// The store's error codes land on the sentinel callers branch on, and each
// sentinel is global, permanent or neither (transient), never both.
func TestClassifyCodes(t *testing.T) {
	cases := []struct {
		code            string
		kind            error
		global, permant bool
	}{
		{"RequestTimeTooSkewed", ErrClockSkew, true, false},
		{"RequestExpired", ErrClockSkew, true, false},
		{"ExpiredToken", ErrBadCredentials, true, false},
		{"InvalidToken", ErrBadCredentials, true, false},
		{"TokenRefreshRequired", ErrBadCredentials, true, false},
		{"InvalidAccessKeyId", ErrBadCredentials, true, false},
		{"SignatureDoesNotMatch", ErrBadCredentials, true, false},
		{"BadDigest", ErrBadDigest, false, false},
		{"InvalidDigest", ErrBadDigest, false, false},
		{"XAmzContentChecksumMismatch", ErrBadDigest, false, false},
		{"InvalidChecksum", ErrBadDigest, false, false},
		{"InvalidArgument", ErrInvalidRequest, false, true},
		// A KMS key the store cannot use (--sse-kms-key-id): retrying cannot help.
		{"KMS.NotFoundException", ErrInvalidRequest, false, true},
		{"KMS.DisabledException", ErrInvalidRequest, false, true},
		{"KMS.AccessDeniedException", ErrAccessDenied, false, true},
		{"KeyTooLongError", ErrInvalidRequest, false, true},
		{"NoSuchBucket", ErrNoSuchBucket, false, true},
		{"AccessDenied", ErrAccessDenied, false, true},
		{"SlowDown", nil, false, false},
		{"InternalError", nil, false, false},
	}
	for _, c := range cases {
		err := wrap("upload", "b", "k", &smithy.GenericAPIError{Code: c.code, Message: "m"})
		if c.kind != nil && !errors.Is(err, c.kind) || c.kind == nil && err.(*Error).Kind != nil {
			t.Errorf("%s: kind %v, want %v", c.code, err.(*Error).Kind, c.kind)
		}
		if IsGlobal(err) != c.global || IsPermanent(err) != c.permant {
			t.Errorf("%s: global %v permanent %v, want %v %v", c.code, IsGlobal(err), IsPermanent(err), c.global, c.permant)
		}
	}
	if !IsGlobal(&Error{Op: "list", Kind: ErrNoCredentials}) || IsPermanent(&Error{Op: "list", Kind: ErrNoCredentials}) {
		t.Error("missing credentials must pause, not fail")
	}
	if !IsGlobal(&Error{Op: "list", Kind: ErrUnreachable}) {
		t.Error("an unreachable endpoint must pause")
	}
}
