package syncer

import (
	"errors"

	"github.com/s3sync/s3sync/remote"
)

// Cond is a write's condition on its destination: the ETag the key must
// still hold, or that it must not exist. The zero Cond writes blindly.
type Cond struct {
	IfMatch     string
	IfNoneMatch bool
	// Writer is stored with the object (remote.PutOptions.Writer).
	Writer string
}

// Conditional reports whether c is a condition at all.
func (c Cond) Conditional() bool { return c.IfMatch != "" || c.IfNoneMatch }

// Set puts c on o.
func (c Cond) Set(o *remote.PutOptions) {
	o.IfMatch, o.IfNoneMatch, o.Writer = c.IfMatch, c.IfNoneMatch, c.Writer
}

// after is the condition once this side wrote etag itself.
func (c Cond) after(etag string) Cond {
	if !c.Conditional() || etag == "" {
		return c
	}
	return Cond{IfMatch: etag, Writer: c.Writer}
}

// Refused reports whether err is the store refusing c: the key holds
// another version (ErrConflict), or, for If-Match, none at all.
func (c Cond) Refused(err error) bool {
	return errors.Is(err, remote.ErrConflict) || c.IfMatch != "" && errors.Is(err, remote.ErrNotFound)
}
