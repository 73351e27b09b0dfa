package walk

import (
	"io/fs"
	"strings"
)

// Special reports whether a file of type t is a FIFO, socket or device,
// which S3 cannot hold: such files are passed over, and a directory
// holding nothing else counts as empty, so that its marker gives it back
// on a restore.
func Special(t fs.FileMode) bool {
	return t&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0
}

// TempPrefix starts the names of s3sync's own temporary download files;
// walks do not yield them (unless AllNames), so an interrupted clone leaves
// nothing to upload.
const TempPrefix = ".s3sync-tmp-"

// Storable reports whether a directory entry named name of type t keeps
// its directory from being empty: it is a file, link or directory, and
// not one of s3sync's temporary files.
func Storable(name string, t fs.FileMode) bool {
	return !strings.HasPrefix(name, TempPrefix) && !Special(t)
}

// SpecialError tells Warn of a FIFO, socket or device, which S3 cannot
// hold.
type SpecialError struct {
	Rel  string
	Info fs.FileInfo
}

func (e *SpecialError) Error() string { return Kind(e.Info.Mode()) + " is not a regular file" }

// Kind names the type of a file of mode m for a person.
func Kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}
