package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/s3sync/s3sync/internal/binenc"
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
	b = binenc.AppendString(b, r.From)
	b = binenc.AppendTime(b, r.First)
	b = binenc.AppendTime(b, r.Last)
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = binenc.AppendString(b, r.Err)
	b = binenc.AppendTime(b, r.ErrTime)
	return b
}

var errCorrupt = errors.New("corrupt record")

// unmarshalRecord decodes a stored record. It copies everything out of data,
// which is only valid inside the transaction.
func unmarshalRecord(path string, data []byte) (Record, error) {
	d := binenc.Decoder{B: data}
	if v := d.Byte(); v != recordVersion {
		return Record{}, fmt.Errorf("journal: record %q: version %d: %w", path, v, errCorrupt)
	}
	r := Record{Path: path}
	r.Op = Op(d.Byte())
	r.IsDir = d.Byte()&flagIsDir != 0
	r.Seq = d.Uvarint()
	r.From = d.String()
	r.First = d.Time()
	r.Last = d.Time()
	r.Attempts = int(d.Uvarint())
	r.Err = d.String()
	r.ErrTime = d.Time()
	if d.Bad {
		return Record{}, fmt.Errorf("journal: record %q: %w", path, errCorrupt)
	}
	return r, nil
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq)
}
