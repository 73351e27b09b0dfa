package binenc

import (
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	times := []time.Time{{}, time.Unix(0, 0), time.Unix(1700000000, 123456789), time.Unix(-5, 7)}
	for _, tm := range times {
		for _, s := range []string{"", "a", "päth/with spaces"} {
			b := AppendString(nil, s)
			b = AppendTime(b, tm)
			b = append(b, 0x7f)
			d := Decoder{B: b}
			if got := d.String(); got != s {
				t.Errorf("string %q came back %q", s, got)
			}
			if got := d.Time(); !got.Equal(tm) || got.IsZero() != tm.IsZero() {
				t.Errorf("time %v came back %v", tm, got)
			}
			if got := d.Byte(); got != 0x7f || d.Bad || len(d.B) != 0 {
				t.Errorf("trailing byte %x, bad %v, left %d", got, d.Bad, len(d.B))
			}
		}
	}
}

// A truncated or corrupt value is reported once, through Bad, and never
// panics or reads past the end.
func TestCorrupt(t *testing.T) {
	full := AppendTime(AppendString(nil, "hello"), time.Unix(1700000000, 5))
	for n := range len(full) {
		d := Decoder{B: full[:n]}
		_ = d.String()
		d.Time()
		if !d.Bad {
			t.Errorf("%d of %d bytes decoded without complaint", n, len(full))
		}
	}
	d := Decoder{B: []byte{1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f}} // nanoseconds ≥ 1e9
	d.Time()
	if !d.Bad {
		t.Error("out-of-range nanoseconds accepted")
	}
}
