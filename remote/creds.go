package remote

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// swappableCreds is the client's credentials provider: the one the
// standard chain gave, replaced whole by ReloadCredentials. Requests in
// flight keep the credentials they were signed with.
type swappableCreds struct {
	p atomic.Pointer[aws.CredentialsProvider]
}

func newSwappableCreds(p aws.CredentialsProvider) *swappableCreds {
	s := &swappableCreds{}
	s.p.Store(&p)
	return s
}

func (s *swappableCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	return (*s.p.Load()).Retrieve(ctx)
}

func (s *swappableCreds) swap(p aws.CredentialsProvider) { s.p.Store(&p) }

// ReloadCredentials reads the standard credential chain again (environment,
// ~/.aws/config and ~/.aws/credentials, the profile given to New), checks
// that it yields credentials, and makes the following requests use them:
// after ErrBadCredentials or ErrNoCredentials, fixing the keys heals a
// running client. Region and endpoint stay as New chose them. When the
// chain yields nothing (ErrNoCredentials), the client keeps the
// credentials it had.
func (c *Client) ReloadCredentials(ctx context.Context) error {
	awsCfg, err := config.LoadDefaultConfig(ctx, c.loadOpts...)
	if err != nil {
		return fmt.Errorf("reload credentials: %w", classifyConfigErr(err))
	}
	if awsCfg.Credentials == nil || c.creds == nil {
		// The chain always names a provider; nil is an anonymous client.
		return &Error{Op: "reload credentials", Kind: ErrNoCredentials}
	}
	// Retrieving once also fills the new provider's cache, so the next
	// request does not pay for it.
	if _, err := awsCfg.Credentials.Retrieve(ctx); err != nil {
		return wrap("reload credentials", "", "", err)
	}
	c.creds.swap(awsCfg.Credentials)
	return nil
}

// freshSigner signs as the SDK's S3 signer does, but with a new signer
// whenever the secret changes: the SDK's signer caches the derived signing
// key by access key ID and day only, so a corrected secret under the same
// key ID would go on failing until midnight UTC.
type freshSigner struct {
	cur atomic.Pointer[secretSigner]
}

// secretSigner is a signer and the secret its cache was derived from (kept
// in memory only, as the credentials are).
type secretSigner struct {
	secret string
	signer *v4.Signer
}

func (f *freshSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, signingTime time.Time, optFns ...func(*v4.SignerOptions)) error {
	cur := f.cur.Load()
	if cur == nil || cur.secret != creds.SecretAccessKey {
		cur = &secretSigner{secret: creds.SecretAccessKey, signer: v4.NewSigner(func(o *v4.SignerOptions) {
			o.DisableURIPathEscaping = true // as S3 requires, and the SDK's S3 signer does
		})}
		f.cur.Store(cur)
	}
	return cur.signer.SignHTTP(ctx, creds, r, payloadHash, service, region, signingTime, optFns...)
}
