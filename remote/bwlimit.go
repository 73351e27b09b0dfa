package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/time/rate"
)

// Bandwidth limits (--bwlimit), in rclone's syntax so that a limit written
// for rclone means the same here: a rate in KiB/s unless it has a suffix
// (B, K, M, G, T, P; powers of 1024), "off" or 0 for none, UP:DOWN for
// separate upload and download rates, or a timetable of such rates that
// switch at local times of the day or week. One Limiter is shared by every
// request of the process: it limits the bodies of requests (uploads) and
// of responses (downloads, listings) at the HTTP client, under the SDK's
// retries, which rewind their own seekable copy of each body.

// BwRate is an upload and a download rate in bytes per second; 0 is no
// limit.
type BwRate struct {
	Up, Down int64
}

func (r BwRate) String() string {
	if r.Up == r.Down {
		return formatRate(r.Up)
	}
	return formatRate(r.Up) + ":" + formatRate(r.Down)
}

func formatRate(n int64) string {
	if n <= 0 {
		return "off"
	}
	for _, u := range []struct {
		shift  uint
		suffix string
	}{{50, "P"}, {40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// BwSlot is the rate in force from a minute of the week on.
type BwSlot struct {
	Weekday time.Weekday
	Minute  int // since midnight
	Rate    BwRate
}

func (s BwSlot) weekMinute() int { return int(s.Weekday)*24*60 + s.Minute }

// BwTimetable is a parsed --bwlimit: slots sorted by minute of the week. A
// single rate is one slot that is always in force.
type BwTimetable []BwSlot

// At returns the rate in force at t (local time, as t's location says):
// the latest slot at or before t in the week, else the week's last slot,
// which holds on from the previous week.
func (tt BwTimetable) At(t time.Time) BwRate {
	if len(tt) == 0 {
		return BwRate{}
	}
	now := int(t.Weekday())*24*60 + t.Hour()*60 + t.Minute()
	cur := tt[len(tt)-1]
	for _, s := range tt {
		if s.weekMinute() > now {
			break
		}
		cur = s
	}
	return cur.Rate
}

// Limited reports whether any slot limits anything.
func (tt BwTimetable) Limited() bool {
	for _, s := range tt {
		if s.Rate.Up > 0 || s.Rate.Down > 0 {
			return true
		}
	}
	return false
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// ParseBwLimit reads a --bwlimit value: "10M", "512k", "off", "10M:5M",
// or a timetable such as "08:00,512k 19:00,off" or
// "Mon-08:00,512k Sat-10:00,off" (entries separated by spaces or
// semicolons; a time without a weekday holds for every day).
func ParseBwLimit(s string) (BwTimetable, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty bandwidth limit")
	}
	if !strings.ContainsAny(s, " \t;,") {
		r, err := parseBwRate(s)
		if err != nil {
			return nil, err
		}
		return BwTimetable{{Rate: r}}, nil
	}
	byMinute := map[int]BwSlot{}
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ';' }) {
		when, bw, ok := strings.Cut(tok, ",")
		if !ok || strings.Contains(bw, ",") {
			return nil, fmt.Errorf("%q is not TIME,RATE (e.g. 08:00,512k or Mon-08:00,512k)", tok)
		}
		days := []time.Weekday{0, 1, 2, 3, 4, 5, 6}
		if day, hhmm, ok := strings.Cut(when, "-"); ok {
			d, known := weekdays[strings.ToLower(day)]
			if !known {
				return nil, fmt.Errorf("%q in %q is not a weekday (Mon, Tue, … or Monday, Tuesday, …)", day, tok)
			}
			days, when = []time.Weekday{d}, hhmm
		}
		minute, err := parseHHMM(when)
		if err != nil {
			return nil, fmt.Errorf("%q in %q: %w", when, tok, err)
		}
		r, err := parseBwRate(bw)
		if err != nil {
			return nil, err
		}
		for _, d := range days {
			slot := BwSlot{Weekday: d, Minute: minute, Rate: r}
			byMinute[slot.weekMinute()] = slot // a later entry for the same minute wins
		}
	}
	tt := make(BwTimetable, 0, len(byMinute))
	for _, slot := range byMinute {
		tt = append(tt, slot)
	}
	slices.SortFunc(tt, func(a, b BwSlot) int { return a.weekMinute() - b.weekMinute() })
	return tt, nil
}

func parseHHMM(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, errors.New("not a time HH:MM")
	}
	hh, err1 := strconv.Atoi(s[:2])
	mm, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, errors.New("not a time from 00:00 to 23:59")
	}
	return hh*60 + mm, nil
}

// parseBwRate reads RATE or UP:DOWN.
func parseBwRate(s string) (BwRate, error) {
	up, down, split := strings.Cut(s, ":")
	u, err := parseBytesPerSec(up)
	if err != nil {
		return BwRate{}, err
	}
	if !split {
		return BwRate{Up: u, Down: u}, nil
	}
	d, err := parseBytesPerSec(down)
	if err != nil {
		return BwRate{}, err
	}
	return BwRate{Up: u, Down: d}, nil
}

// parseBytesPerSec reads one rate: "off", or a number of KiB/s with an
// optional unit B|K|M|G|T|P (also Ki, KiB, …).
func parseBytesPerSec(s string) (int64, error) {
	if strings.EqualFold(s, "off") {
		return 0, nil
	}
	num := strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
	unit := strings.ToLower(s[len(num):])
	if num == "" || num == "." || strings.Count(num, ".") > 1 || strings.Trim(num, "0123456789.") != "" {
		return 0, fmt.Errorf("%q is not a rate (e.g. 512k, 10M, off)", s)
	}
	shift, ok := rateUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit; use B, K, M, G, T or P", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a rate (e.g. 512k, 10M, off)", s)
	}
	v *= float64(uint64(1) << shift)
	if v >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large a rate", s)
	}
	n := int64(v)
	if n == 0 && v > 0 {
		n = 1
	}
	return n, nil
}

// rateUnits are rclone's suffixes, as powers of two; no suffix is KiB.
var rateUnits = map[string]uint{
	"": 10, "b": 0,
	"k": 10, "ki": 10, "kib": 10,
	"m": 20, "mi": 20, "mib": 20,
	"g": 30, "gi": 30, "gib": 30,
	"t": 40, "ti": 40, "tib": 40,
	"p": 50, "pi": 50, "pib": 50,
}

// Limiter is one --bwlimit for the whole process: a token bucket for each
// direction, set from the timetable whenever a body reads.
type Limiter struct {
	table BwTimetable
	now   func() time.Time

	mu      sync.Mutex
	cur     BwRate
	applied bool
	// up and down are the buckets of the rate in force; nil is no limit.
	// A new rate gets new buckets, so a body never waits on a bucket
	// smaller than the piece it read.
	up, down *rate.Limiter
}

// NewLimiter returns a limiter following tt; now is the clock (nil:
// time.Now), so tests can move through a timetable.
func NewLimiter(tt BwTimetable, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{table: tt, now: now}
}

// burstFor is the bucket size for a rate: a tenth of a second's worth, so
// that a transfer starting after a pause gets ahead by little, within
// bounds that keep each read worthwhile and each wait short.
func burstFor(bps int64) int {
	return int(min(max(bps/10, 1<<10), 256<<10))
}

func bucketFor(bps int64) *rate.Limiter {
	if bps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bps), burstFor(bps))
}

// Rate returns the rate in force now, switching to it if it changed.
func (l *Limiter) Rate() BwRate {
	r, _ := l.bucket(false)
	return r
}

// bucket switches to the rate in force now and returns it with the bucket
// of one direction (nil: no limit).
func (l *Limiter) bucket(upload bool) (BwRate, *rate.Limiter) {
	r := l.table.At(l.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.applied || r != l.cur {
		if l.applied {
			slog.Info("bandwidth limit changed", "limit", r.String(), "was", l.cur.String())
		}
		if !l.applied || r.Up != l.cur.Up {
			l.up = bucketFor(r.Up)
		}
		if !l.applied || r.Down != l.cur.Down {
			l.down = bucketFor(r.Down)
		}
		l.cur, l.applied = r, true
	}
	if upload {
		return r, l.up
	}
	return r, l.down
}

// limitedBody paces a request or response body through the limiter.
type limitedBody struct {
	io.ReadCloser
	ctx    context.Context
	l      *Limiter
	upload bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	_, lim := b.l.bucket(b.upload)
	if lim == nil || len(p) == 0 {
		return b.ReadCloser.Read(p)
	}
	n, err := b.ReadCloser.Read(p[:min(len(p), lim.Burst())])
	if n > 0 {
		if werr := lim.WaitN(b.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// limitedClient is the SDK's HTTP client with every body paced. The SDK
// hands it a fresh, non-seekable body on each attempt (it rewinds its own
// seekable stream for a retry), so wrapping here is safe for retries.
type limitedClient struct {
	next aws.HTTPClient
	l    *Limiter
}

func (c limitedClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		r2 := req.WithContext(req.Context())
		r2.Body = &limitedBody{ReadCloser: req.Body, ctx: req.Context(), l: c.l, upload: true}
		if req.GetBody != nil {
			get := req.GetBody
			r2.GetBody = func() (io.ReadCloser, error) {
				body, err := get()
				if err != nil {
					return nil, err
				}
				return &limitedBody{ReadCloser: body, ctx: req.Context(), l: c.l, upload: true}, nil
			}
		}
		req = r2
	}
	resp, err := c.next.Do(req)
	if err == nil && resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &limitedBody{ReadCloser: resp.Body, ctx: req.Context(), l: c.l}
	}
	return resp, err
}
