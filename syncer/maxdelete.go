package syncer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxDelete is --max-delete: how many deletions one run may make. The zero
// value is the default, which refuses a mass deletion: more than
// DefaultMaxDeletePercent of what the destination holds and more than
// DefaultMaxDeleteMin paths. An emptied, unmounted or mistyped source
// otherwise looks exactly like "delete everything".
type MaxDelete struct {
	// Set: the user gave a limit; Count or Percent applies, not the default.
	Set bool
	// Count is the most paths one run may delete; -1 means no limit.
	Count int64
	// Percent, when IsPercent, is the most one run may delete as a share of
	// what the destination holds, 0 to 100.
	Percent   float64
	IsPercent bool
}

// The default limit: a run may delete up to DefaultMaxDeleteMin paths
// whatever the destination holds, and more only while they are at most
// DefaultMaxDeletePercent of it.
const (
	DefaultMaxDeletePercent = 50
	DefaultMaxDeleteMin     = 20
)

// ParseMaxDelete reads --max-delete: N (a count), P% (a share of the
// destination), or -1 (no limit, as 100%).
func ParseMaxDelete(s string) (MaxDelete, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 0 || v > 100 {
			return MaxDelete{}, fmt.Errorf("--max-delete %q: a percentage must be 0%% to 100%%", s)
		}
		return MaxDelete{Set: true, Percent: v, IsPercent: true}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < -1 {
		return MaxDelete{}, fmt.Errorf("--max-delete %q: give a count (e.g. 100), a percentage of the destination (e.g. 10%%), or -1 for no limit", s)
	}
	return MaxDelete{Set: true, Count: n}, nil
}

// Allows says whether deleting n of the total paths the destination holds
// is within the limit.
func (m MaxDelete) Allows(n, total int64) bool {
	if n <= 0 {
		return true
	}
	switch {
	case !m.Set:
		return n <= DefaultMaxDeleteMin || float64(n) <= float64(total)*DefaultMaxDeletePercent/100
	case m.IsPercent:
		return float64(n) <= float64(total)*m.Percent/100
	case m.Count < 0:
		return true
	}
	return n <= m.Count
}

// Unlimited reports whether the user lifted the limit (-1, or 100%).
func (m MaxDelete) Unlimited() bool {
	return m.Set && (m.IsPercent && m.Percent >= 100 || !m.IsPercent && m.Count < 0)
}

// String names the limit for a message.
func (m MaxDelete) String() string {
	switch {
	case !m.Set:
		return fmt.Sprintf("--max-delete's default of %d%%", DefaultMaxDeletePercent)
	case m.IsPercent:
		return fmt.Sprintf("--max-delete %s%%", strconv.FormatFloat(m.Percent, 'f', -1, 64))
	}
	return fmt.Sprintf("--max-delete %d", m.Count)
}

// ErrTooManyDeletes is wrapped by DeleteRefusal, for callers that only
// branch on it.
var ErrTooManyDeletes = errors.New("too many deletions")

// DeleteRefusal reports that a run found more to delete than its
// MaxDelete allows, and so deleted nothing.
type DeleteRefusal struct {
	N, Total int64
	Where    string // the destination, as the user wrote it
	What     string // "objects" or "files"
	Limit    MaxDelete
	// DryRun: nothing would have been deleted either.
	DryRun bool
}

func (e *DeleteRefusal) Error() string {
	pct := 100.0
	if e.Total > 0 {
		pct = float64(e.N) * 100 / float64(e.Total)
	}
	verb := "refusing"
	if e.DryRun {
		verb = "would refuse"
	}
	return fmt.Sprintf("%s to delete %d of %d %s at %s (%.0f%%), over %s; nothing was deleted. To delete them, run again with --max-delete %d (or 100%%)",
		verb, e.N, e.Total, e.What, e.Where, pct, e.Limit, e.N)
}

func (e *DeleteRefusal) Unwrap() error { return ErrTooManyDeletes }
