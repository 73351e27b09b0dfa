package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Op says what happened to a path.
type Op uint8

const (
	// OpChanged: the path was created, written, truncated, chmod-ed, had its
	// times set, or became a symlink, hard link or directory.
	OpChanged Op = iota + 1
	// OpRemoved: unlink or rmdir.
	OpRemoved
	// OpRenamed: Path is the new name, From the old one.
	OpRenamed
)

func (o Op) String() string {
	switch o {
	case OpChanged:
		return "changed"
	case OpRemoved:
		return "removed"
	case OpRenamed:
		return "renamed"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Record is the one pending change of a path.
type Record struct {
	// Seq orders records; re-recording a path gives it a new, higher Seq, so
	// the syncer can tell whether the record it worked on is still current.
	Seq uint64
	// Path is slash-separated, relative to the working directory, with no
	// leading slash.
	Path string
	Op   Op
	// From is the old path of an OpRenamed. It survives a later OpChanged
	// onto the same path as a hint (the remote may still hold the content
	// under From); IsDir survives with it, because a directory's children
	// are not journaled one by one when the directory is renamed.
	From  string
	IsDir bool
	// First is when the oldest still-unsynced change to Path was recorded;
	// it is kept across coalescing so lag is measured honestly.
	First time.Time
	// Last is when the latest change was recorded; the settle delay counts
	// from here.
	Last time.Time
	// Attempts counts failed attempts at the current change (Retry, Fail).
	// A new change to the path starts again from zero.
	Attempts int
	// Err is the last failure's message and ErrTime when it happened.
	Err     string
	ErrTime time.Time
}

const recordVersion = 1

const flagIsDir = 1

// marshal encodes r without its path, which is the bucket key.
func (r *Record) marshal() []byte {
	b := make([]byte, 0, 48+len(r.From)+len(r.Err))
	var flags byte
	if r.IsDir {
		flags |= flagIsDir
	}
	b = append(b, recordVersion, byte(r.Op), flags)
	b = binary.AppendUvarint(b, r.Seq)
	b = appendString(b, r.From)
	b = appendTime(b, r.First)
	b = appendTime(b, r.Last)
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = appendString(b, r.Err)
	b = appendTime(b, r.ErrTime)
	return b
}

var errCorrupt = errors.New("corrupt record")

// unmarshalRecord decodes a stored record. It copies everything out of data,
// which is only valid inside the transaction.
func unmarshalRecord(path string, data []byte) (Record, error) {
	d := decoder{b: data}
	if v := d.byte(); v != recordVersion {
		return Record{}, fmt.Errorf("journal: record %q: version %d: %w", path, v, errCorrupt)
	}
	r := Record{Path: path}
	r.Op = Op(d.byte())
	r.IsDir = d.byte()&flagIsDir != 0
	r.Seq = d.uvarint()
	r.From = d.string()
	r.First = d.time()
	r.Last = d.time()
	r.Attempts = int(d.uvarint())
	r.Err = d.string()
	r.ErrTime = d.time()
	if d.bad {
		return Record{}, fmt.Errorf("journal: record %q: %w", path, errCorrupt)
	}
	return r, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendTime keeps nanoseconds and the zero time exactly; UnixNano can't
// represent the zero time.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	if d.byte() == 0 {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if d.bad || nsec >= 1e9 {
		d.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec))
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}
