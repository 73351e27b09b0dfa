// Package binenc is the small binary encoding shared by the journal's and
// the cache's bbolt values: varints, length-prefixed strings, and times
// that keep nanoseconds and the zero time exactly.
package binenc

import (
	"encoding/binary"
	"time"
)

// AppendString appends s with its length.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendTime keeps nanoseconds and the zero time exactly; UnixNano can't
// represent the zero time.
func AppendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// Decoder reads what the Append functions wrote. A short or malformed
// input sets Bad and yields zero values from then on, so a caller checks
// once at the end.
type Decoder struct {
	B   []byte
	Bad bool
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.B) < 1 {
		d.Bad = true
		return 0
	}
	c := d.B[0]
	d.B = d.B[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Bad = true
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Bad = true
		return 0
	}
	d.B = d.B[n:]
	return v
}

// String reads a length-prefixed string.
func (d *Decoder) String() string {
	n := d.Uvarint()
	if d.Bad || n > uint64(len(d.B)) {
		d.Bad = true
		return ""
	}
	s := string(d.B[:n])
	d.B = d.B[n:]
	return s
}

// Time reads a time written by AppendTime.
func (d *Decoder) Time() time.Time {
	if d.Byte() == 0 {
		return time.Time{}
	}
	sec := d.Varint()
	nsec := d.Uvarint()
	if d.Bad || nsec >= 1e9 {
		d.Bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}
