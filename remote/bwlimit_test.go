package remote_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

func TestParseBwLimit(t *testing.T) {
	every := func(minute int, r remote.BwRate) remote.BwTimetable {
		var tt remote.BwTimetable
		for d := time.Sunday; d <= time.Saturday; d++ {
			tt = append(tt, remote.BwSlot{Weekday: d, Minute: minute, Rate: r})
		}
		return tt
	}
	both := func(n int64) remote.BwRate { return remote.BwRate{Up: n, Down: n} }
	for _, tc := range []struct {
		in   string
		want remote.BwTimetable // nil: an error
		err  string             // in the error
	}{
		{in: "10M", want: remote.BwTimetable{{Rate: both(10 * mib)}}},
		{in: "512k", want: remote.BwTimetable{{Rate: both(512 * kib)}}},
		{in: "512", want: remote.BwTimetable{{Rate: both(512 * kib)}}}, // KiB/s by default
		{in: "100B", want: remote.BwTimetable{{Rate: both(100)}}},
		{in: "1G", want: remote.BwTimetable{{Rate: both(1 << 30)}}},
		{in: "2T", want: remote.BwTimetable{{Rate: both(2 << 40)}}},
		{in: "1P", want: remote.BwTimetable{{Rate: both(1 << 50)}}},
		{in: "0.5M", want: remote.BwTimetable{{Rate: both(512 * kib)}}},
		{in: "10Mi", want: remote.BwTimetable{{Rate: both(10 * mib)}}},
		{in: "10MiB", want: remote.BwTimetable{{Rate: both(10 * mib)}}},
		{in: "off", want: remote.BwTimetable{{Rate: both(0)}}},
		{in: "OFF", want: remote.BwTimetable{{Rate: both(0)}}},
		{in: "0", want: remote.BwTimetable{{Rate: both(0)}}},
		{in: "10M:5M", want: remote.BwTimetable{{Rate: remote.BwRate{Up: 10 * mib, Down: 5 * mib}}}},
		{in: "10M:off", want: remote.BwTimetable{{Rate: remote.BwRate{Up: 10 * mib}}}},
		{in: "off:100k", want: remote.BwTimetable{{Rate: remote.BwRate{Down: 100 * kib}}}},
		{in: "08:00,512k 19:00,off", want: mergeSlots(every(8*60, both(512*kib)), every(19*60, both(0)))},
		{in: "08:00,512k;19:00,off", want: mergeSlots(every(8*60, both(512*kib)), every(19*60, both(0)))},
		{in: "  08:00,512k   19:00,off  ", want: mergeSlots(every(8*60, both(512*kib)), every(19*60, both(0)))},
		{in: "Mon-08:00,512k Sat-10:00,off", want: remote.BwTimetable{
			{Weekday: time.Monday, Minute: 8 * 60, Rate: both(512 * kib)},
			{Weekday: time.Saturday, Minute: 10 * 60, Rate: both(0)},
		}},
		{in: "monday-08:00,1M:2M SUNDAY-23:59,off", want: remote.BwTimetable{
			{Weekday: time.Sunday, Minute: 23*60 + 59, Rate: both(0)},
			{Weekday: time.Monday, Minute: 8 * 60, Rate: remote.BwRate{Up: mib, Down: 2 * mib}},
		}},
		{in: "08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off", want: mergeSlots(
			every(8*60, both(512*kib)), every(12*60, both(10*mib)), every(13*60, both(512*kib)),
			every(18*60, both(30*mib)), every(23*60, both(0)))},
		// A later entry for the same minute wins.
		{in: "Mon-08:00,1M 08:00,2M", want: every(8*60, both(2*mib))},

		{in: "", err: "empty"},
		{in: "fast", err: `"fast"`},
		{in: "10X", err: "unit"},
		{in: "10MB", err: "unit"},
		{in: "-5M", err: `"-5M"`},
		{in: "1.2.3M", err: `"1.2.3M"`},
		{in: "inf", err: `"inf"`},
		{in: "NaN", err: `"NaN"`},
		{in: "1e3", err: `"1e3"`},
		{in: "10M:", err: `""`},
		{in: ":10M", err: `""`},
		{in: "99999999P", err: "too large"},
		{in: "08:00 19:00,off", err: "TIME,RATE"},
		{in: "08:00,512k,1M", err: "TIME,RATE"},
		{in: "24:00,1M", err: "00:00 to 23:59"},
		{in: "08:60,1M", err: "00:00 to 23:59"},
		{in: "8:00,1M", err: "HH:MM"},
		{in: "Mun-08:00,1M", err: "weekday"},
		{in: "08:00,fast 19:00,off", err: `"fast"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := remote.ParseBwLimit(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseBwLimit(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBwLimit(%q): %v", tc.in, err)
			}
			if !equalTimetables(got, tc.want) {
				t.Fatalf("ParseBwLimit(%q) =\n  %v\nwant\n  %v", tc.in, got, tc.want)
			}
		})
	}
}

// mergeSlots is the slots of several days' timetables in week order.
func mergeSlots(tts ...remote.BwTimetable) remote.BwTimetable {
	var all remote.BwTimetable
	for _, tt := range tts {
		all = append(all, tt...)
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			wi := int(all[i].Weekday)*1440 + all[i].Minute
			wj := int(all[j].Weekday)*1440 + all[j].Minute
			if wj < wi {
				all[i], all[j] = all[j], all[i]
			}
		}
	}
	return all
}

func equalTimetables(a, b remote.BwTimetable) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// The rate follows the timetable in local time, wrapping over the week:
// before the week's first slot, its last slot still holds.
func TestBwTimetableSwitches(t *testing.T) {
	// 2024-01-01 was a Monday.
	at := func(day int, hh, mm int) time.Time { return time.Date(2024, 1, day, hh, mm, 0, 0, time.Local) }
	clock := &fakeClock{}
	for _, tc := range []struct {
		spec  string
		steps []struct {
			t    time.Time
			want string
		}
	}{
		{"08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off", []struct {
			t    time.Time
			want string
		}{
			{at(1, 7, 59), "off"}, {at(1, 8, 0), "512K"}, {at(1, 11, 59), "512K"}, {at(1, 12, 0), "10M"},
			{at(1, 13, 0), "512K"}, {at(1, 18, 30), "30M"}, {at(1, 23, 0), "off"}, {at(2, 0, 1), "off"},
			{at(7, 8, 0), "512K"}, // Sunday
		}},
		{"Mon-08:00,512k Sat-10:00,off", []struct {
			t    time.Time
			want string
		}{
			{at(1, 7, 0), "off"},                                                 // Monday before 08:00: Saturday's slot holds over the week's end
			{at(1, 8, 0), "512K"}, {at(3, 3, 0), "512K"}, {at(5, 23, 0), "512K"}, // Friday night
			{at(6, 9, 59), "512K"}, {at(6, 10, 0), "off"}, // Saturday
			{at(7, 12, 0), "off"}, // Sunday
		}},
		{"Mon-00:00,1M:2M", []struct {
			t    time.Time
			want string
		}{{at(3, 12, 0), "1M:2M"}, {at(7, 12, 0), "1M:2M"}}},
		{"4M", []struct {
			t    time.Time
			want string
		}{{at(1, 0, 0), "4M"}, {at(5, 13, 0), "4M"}}},
	} {
		tt, err := remote.ParseBwLimit(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		l := remote.NewLimiter(tt, clock.now)
		for _, s := range tc.steps {
			clock.set(s.t)
			if got := l.Rate().String(); got != s.want {
				t.Errorf("%q at %s: %s, want %s", tc.spec, s.t.Format("Mon 15:04"), got, s.want)
			}
		}
	}
}

// limitedClient returns a client whose every body goes through l.
func limitedClient(t testing.TB, endpoint string, l *remote.Limiter, mod func(*remote.Config)) *remote.Client {
	t.Helper()
	cfg := remote.Config{EndpointURL: endpoint, BwLimit: l}
	if mod != nil {
		mod(&cfg)
	}
	c, err := remote.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rateOf is bytes per second between the first and the last byte.
func rateOf(n int64, first, last time.Time) float64 {
	return float64(n) / last.Sub(first).Seconds()
}

// notAbove fails t when a measured rate exceeds the limit. Only the upper
// bound is checked: a loaded machine makes a transfer slower, never
// faster, so a rate above the limit (10% allows for the first burst) is
// the limiter's fault whatever else runs; how close to the limit it gets
// is BenchmarkBwLimitRate's to show.
func notAbove(t *testing.T, what string, got, limit float64) {
	t.Helper()
	t.Logf("%s: %.2f MiB/s (limit %.2f MiB/s)", what, got/float64(mib), limit/float64(mib))
	if got > limit*1.1 {
		t.Errorf("%s: %.2f MiB/s, above the limit of %.2f MiB/s", what, got/float64(mib), limit/float64(mib))
	}
}

// timedWriter notes when the first and the last bytes arrive.
type timedWriter struct {
	mu          sync.Mutex
	n           int64
	first, last time.Time
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.first.IsZero() {
		w.first = now
	}
	w.last, w.n = now, w.n+int64(len(p))
	return len(p), nil
}

// Against the real server: an upload (multipart, parts in parallel) and a
// download of 16 MiB with --bwlimit 4M each take at least about 4 s: the
// measured rate, from the first body byte to the last, is not above the
// limit.
func TestBwLimitTransferRate(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	rec := newRecorder(t, srv.Endpoint)
	const limit = 4 << 20
	const size = 16 << 20
	tt, err := remote.ParseBwLimit("4M")
	if err != nil {
		t.Fatal(err)
	}
	c := limitedClient(t, rec.url, remote.NewLimiter(tt, nil), nil)
	body := make([]byte, size)
	rand.Read(body)
	ctx := context.Background()

	if _, err := c.Upload(ctx, bucket, "big", bytes.NewReader(body), size, remote.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	n, first, last := rec.bodies()
	if n != size {
		t.Fatalf("the server received %d body bytes, want %d", n, size)
	}
	notAbove(t, "upload", rateOf(n, first, last), limit)

	w := &timedWriter{}
	if _, err := c.Download(ctx, bucket, "big", "", w); err != nil {
		t.Fatal(err)
	}
	if w.n != size {
		t.Fatalf("downloaded %d bytes, want %d", w.n, size)
	}
	notAbove(t, "download", rateOf(w.n, w.first, w.last), limit)
}

// The limit is the process's, not each transfer's: two uploads and a
// download at once through two clients sharing one Limiter stay under it
// together, per direction (upload:download given apart).
func TestBwLimitShared(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	rec := newRecorder(t, srv.Endpoint)
	const up, down = 4 << 20, 6 << 20
	tt, err := remote.ParseBwLimit("4M:6M")
	if err != nil {
		t.Fatal(err)
	}
	l := remote.NewLimiter(tt, nil)
	// Below the multipart threshold: one PUT each, each on one connection.
	small := func(c *remote.Config) { c.MultipartThreshold = 64 << 20 }
	c1, c2 := limitedClient(t, rec.url, l, small), limitedClient(t, rec.url, l, small)
	const size = 8 << 20
	body := make([]byte, size)
	rand.Read(body)
	ctx := context.Background()
	other := make([]byte, 12<<20)
	rand.Read(other)
	srv.Put(t, bucket, "down", string(other), nil)
	rec.reset()

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i, c := range []*remote.Client{c1, c2} {
		wg.Go(func() {
			_, err := c.Upload(ctx, bucket, "up"+string(rune('0'+i)), bytes.NewReader(body), size, remote.PutOptions{})
			errs <- err
		})
	}
	w := &timedWriter{}
	wg.Go(func() {
		_, err := c1.Download(ctx, bucket, "down", "", w)
		errs <- err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n, first, last := rec.bodies()
	if n != 2*size {
		t.Fatalf("the server received %d body bytes, want %d", n, 2*size)
	}
	notAbove(t, "two uploads together", rateOf(n, first, last), up)
	notAbove(t, "download meanwhile", rateOf(w.n, w.first, w.last), down)
}

// How close to the limit a download through the limiter gets: the rate
// as a fraction of the limit (x-limit; 1 is the limit exactly). Run with
// go test -bench BwLimitRate ./remote/ on a quiet machine.
func BenchmarkBwLimitRate(b *testing.B) {
	srv := s3test.Get(b)
	bucket := srv.NewBucket(b)
	const limit, size = 8 << 20, 16 << 20
	body := make([]byte, size)
	rand.Read(body)
	srv.Put(b, bucket, "big", string(body), nil)
	tt, err := remote.ParseBwLimit("8M")
	if err != nil {
		b.Fatal(err)
	}
	c := limitedClient(b, srv.Endpoint, remote.NewLimiter(tt, nil), nil)
	var n int64
	var took time.Duration
	for b.Loop() {
		w := &timedWriter{}
		if _, err := c.Download(context.Background(), bucket, "big", "", w); err != nil {
			b.Fatal(err)
		}
		n, took = n+w.n, took+w.last.Sub(w.first)
	}
	rate := float64(n) / took.Seconds()
	b.ReportMetric(rate/float64(mib), "MiB/s")
	b.ReportMetric(rate/limit, "x-limit")
}

var _ io.Writer = (*timedWriter)(nil)
