package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/s3sync/s3sync/remote"
)

// transferFlags are --bwlimit (rclone's) and the encryption flags, spelled
// as `aws s3 sync` spells them.
type transferFlags struct {
	bwlimit           string
	sse               string
	kmsKeyID          string
	sseC              string
	sseCKey           string
	sseCCopySource    string
	sseCCopySourceKey string

	// Set by validate.
	limiter *remote.Limiter
	enc     remote.SSE
}

// register adds the flags mount and reconcile share.
func (x *transferFlags) register(f *pflag.FlagSet) {
	f.StringVar(&x.bwlimit, "bwlimit", "", `limit bandwidth, in rclone's syntax: a rate in KiB/s or with a suffix B|K|M|G|T|P (e.g. 512k, 10M), UP:DOWN (10M:5M), off, or a timetable of local times ("08:00,512k 19:00,off", "Mon-08:00,512k Sat-10:00,off")`)
	f.StringVar(&x.sse, "sse", "", "server-side encryption of uploads and copies: AES256 (SSE-S3) or aws:kms (SSE-KMS)")
	f.StringVar(&x.kmsKeyID, "sse-kms-key-id", "", "with --sse aws:kms, the KMS key to encrypt with (default: the account's AWS managed key)")
	x.registerCustomerKey(f)
}

// registerCustomerKey adds the flags a reader of SSE-C objects needs.
func (x *transferFlags) registerCustomerKey(f *pflag.FlagSet) {
	f.StringVar(&x.sseC, "sse-c", "", "encrypt uploads and copies with your own key (SSE-C): AES256, with --sse-c-key; downloads and reads need the same")
	f.StringVar(&x.sseCKey, "sse-c-key", "", "the 32-byte SSE-C key: the raw key, fileb://PATH of a file holding it, or fd://N to read it from file descriptor N (both keep it out of shell history)")
}

// registerCopySource adds the flags for copies from SSE-C objects
// (reconcile s3://… s3://…).
func (x *transferFlags) registerCopySource(f *pflag.FlagSet) {
	f.StringVar(&x.sseCCopySource, "sse-c-copy-source", "", "copies: the source objects are SSE-C encrypted: AES256, with --sse-c-copy-source-key")
	f.StringVar(&x.sseCCopySourceKey, "sse-c-copy-source-key", "", "copies: the 32-byte SSE-C key of the source objects, raw, fileb://PATH or fd://N")
}

// validate checks the flags and parses them into limiter and enc.
func (x *transferFlags) validate() error {
	if x.bwlimit != "" {
		tt, err := remote.ParseBwLimit(x.bwlimit)
		if err != nil {
			return usageErr("--bwlimit: %v", err)
		}
		if tt.Limited() {
			x.limiter = remote.NewLimiter(tt, nil)
		}
	}
	switch strings.ToLower(x.sse) {
	case "":
	case "aes256":
		x.enc.Algorithm = remote.SSEAES256
	case "aws:kms", "aws:kms:dsse":
		x.enc.Algorithm = strings.ToLower(x.sse)
	default:
		return usageErr("--sse %q: use AES256 (SSE-S3) or aws:kms (SSE-KMS)", x.sse)
	}
	if x.kmsKeyID != "" && !strings.HasPrefix(x.enc.Algorithm, remote.SSEKMS) {
		return usageErr("--sse-kms-key-id needs --sse aws:kms")
	}
	x.enc.KMSKeyID = x.kmsKeyID
	key, err := customerKey("--sse-c", x.sseC, "--sse-c-key", x.sseCKey)
	if err != nil {
		return err
	}
	if key != nil && x.enc.Algorithm != "" {
		return usageErr("--sse and --sse-c cannot be used together: an object has one kind of encryption")
	}
	x.enc.CustomerKey = key
	if x.enc.CopySourceKey, err = customerKey("--sse-c-copy-source", x.sseCCopySource, "--sse-c-copy-source-key", x.sseCCopySourceKey); err != nil {
		return err
	}
	return nil
}

// customerKey reads an SSE-C algorithm flag and its key flag, which go
// together; nil when neither is given.
func customerKey(algFlag, alg, keyFlag, key string) ([]byte, error) {
	switch {
	case alg == "" && key == "":
		return nil, nil
	case alg == "":
		return nil, usageErr("%s needs %s AES256", keyFlag, algFlag)
	case key == "":
		return nil, usageErr("%s needs %s: the 32-byte key, or fileb://PATH", algFlag, keyFlag)
	case !strings.EqualFold(alg, remote.SSEAES256):
		return nil, usageErr("%s %q: the only algorithm is AES256", algFlag, alg)
	}
	k := []byte(key)
	if fd, ok := strings.CutPrefix(key, "fd://"); ok {
		b, err := readKeyFD(fd)
		if err != nil {
			return nil, usageErr("%s: %v", keyFlag, err)
		}
		k = b
	}
	for _, scheme := range []string{"fileb://", "file://"} {
		if path, ok := strings.CutPrefix(key, scheme); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return nil, usageErr("%s: cannot read %s: %v", keyFlag, path, err)
			}
			k = b
			break
		}
	}
	if len(k) != remote.CustomerKeySize {
		// The key itself is never shown.
		return nil, usageErr("%s is %d bytes; an SSE-C key is %d bytes (AES-256), given raw or as fileb://PATH", keyFlag, len(k), remote.CustomerKeySize)
	}
	return k, nil
}

// apply puts the flags into a client's configuration.
func (x *transferFlags) apply(c remote.Config) remote.Config {
	c.BwLimit, c.SSE = x.limiter, x.enc
	return c
}

// applyMount is apply for a mount, which copies only objects it wrote
// itself (renames, mode changes): with SSE-C, a copy's source is
// decrypted with the same key.
func (x *transferFlags) applyMount(c remote.Config) remote.Config {
	c = x.apply(c)
	if c.SSE.CopySourceKey == nil {
		c.SSE.CopySourceKey = c.SSE.CustomerKey
	}
	return c
}
