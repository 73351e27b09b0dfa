package syncer

import "time"

// Direction is which way a transfer goes.
type Direction int

const (
	Upload   Direction = iota + 1 // local → S3
	Download                      // S3 → local
	Copy                          // S3 → S3
)

func (d Direction) String() string {
	switch d {
	case Upload:
		return "upload"
	case Download:
		return "download"
	case Copy:
		return "copy"
	}
	return "?"
}

// Compare holds the flags that change the diff rules.
type Compare struct {
	SizeOnly        bool // --size-only
	ExactTimestamps bool // --exact-timestamps (downloads only, as in the AWS CLI)
	// Checksum (--checksum, rclone's meaning): transfer when the content
	// differs, whatever the times say. ShouldTransfer then decides on size
	// alone; reconcile compares checksums when the sizes agree.
	Checksum bool
}

// Side is what the diff rules look at on one side: a local file's size and
// mtime, or an object's size and LastModified.
type Side struct {
	Size int64
	Time time.Time
}

// ShouldTransfer is the one diff rule of s3sync, the AWS CLI's
// SizeAndLastModifiedSync: transfer when the sizes differ, or (unless
// --size-only) when the times say the destination is stale:
//
//   - upload and copy: the source is newer than the destination;
//   - download: the local file is newer than the object (the AWS CLI sets a
//     downloaded file's mtime to the object's time, so a newer local file
//     means it was changed after the download); with --exact-timestamps any
//     difference counts.
//
// One deliberate difference: when one side's time has whole-second
// precision (S3's LastModified on most stores), the other side is
// truncated to the second before comparing. The AWS CLI does not, and so
// re-uploads every file written in the same second as its upload on each
// run.
func ShouldTransfer(dir Direction, src, dst Side, c Compare) bool {
	if src.Size != dst.Size {
		return true
	}
	if c.SizeOnly || c.Checksum {
		return false
	}
	s, d := comparable(src.Time, dst.Time)
	switch dir {
	case Download:
		if c.ExactTimestamps {
			return !s.Equal(d)
		}
		return d.After(s)
	default:
		return s.After(d)
	}
}

func comparable(a, b time.Time) (time.Time, time.Time) {
	if a.Nanosecond() == 0 || b.Nanosecond() == 0 {
		return a.Truncate(time.Second), b.Truncate(time.Second)
	}
	return a, b
}
