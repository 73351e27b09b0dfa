package mirror

import (
	"context"
	"errors"

	"github.com/s3sync/s3sync/remote"
)

// Pauses: what stops the whole drain rather than one file.

// pauseKind is why the drain is paused.
type pauseKind int

const (
	notPaused pauseKind = iota
	pausedUnreachable
	pausedCredentials
	pausedClock
	pausedDenied
)

var pauseWords = map[pauseKind]string{
	pausedUnreachable: "endpoint unreachable; changes are kept and sent when it returns",
	pausedCredentials: "credentials rejected or missing; draining paused, the credential chain is read again before each retry",
	pausedClock:       "the store refuses this machine's clock; draining paused until the clock is right (timedatectl, chrony)",
	pausedDenied:      "access denied on every request; draining paused until permission is restored",
}

// deniedEverywhere: AccessDenied for this many different paths in a row
// means the credentials lost access, not that a few keys are forbidden.
const deniedEverywhere = 3

// credentialReloader is implemented by *remote.Client.
type credentialReloader interface {
	ReloadCredentials(ctx context.Context) error
}

// pauseFor says whether err should pause the whole drain, and why.
func pauseFor(err error, denials int) pauseKind {
	switch {
	case err == nil:
		return notPaused
	case errors.Is(err, remote.ErrUnreachable):
		return pausedUnreachable
	case errors.Is(err, remote.ErrBadCredentials), errors.Is(err, remote.ErrNoCredentials):
		return pausedCredentials
	case errors.Is(err, remote.ErrClockSkew):
		return pausedClock
	case errors.Is(err, remote.ErrAccessDenied) && denials >= deniedEverywhere:
		return pausedDenied
	}
	return notPaused
}
