package remote

import (
	"errors"
	"fmt"
	"strconv"
)

// POSIX metadata, in the keys and formats rclone's --metadata uses on S3,
// so `rclone copy --metadata` restores what s3sync stored and the other
// way round: x-amz-meta-mode is st_mode in octal with the file type bits
// ("100644", "104755" with setuid), x-amz-meta-uid and -gid are decimal.
const (
	metaMode = "mode"
	metaUID  = "uid"
	metaGID  = "gid"
)

// Posix is a file's mode and owner as an object's metadata holds them.
// Each field counts only with its Has flag: an object written by another
// tool may carry some, none, or a malformed one (which reads as absent).
type Posix struct {
	Mode                    uint32 // st_mode: file type and permission bits (07777)
	UID, GID                uint32
	HasMode, HasUID, HasGID bool
}

// FilePosix is the metadata of a file with st_mode mode, owned by uid:gid.
func FilePosix(mode, uid, gid uint32) Posix {
	return Posix{Mode: mode, UID: uid, GID: gid, HasMode: true, HasUID: true, HasGID: true}
}

// put adds p's keys to meta, formatted as rclone writes them.
func (p Posix) put(meta map[string]string) {
	if p.HasMode {
		meta[metaMode] = strconv.FormatUint(uint64(p.Mode), 8)
	}
	if p.HasUID {
		meta[metaUID] = strconv.FormatUint(uint64(p.UID), 10)
	}
	if p.HasGID {
		meta[metaGID] = strconv.FormatUint(uint64(p.GID), 10)
	}
}

// maxStMode is the largest st_mode: type (0170000) and mode (07777) bits.
const maxStMode = 0o177777

// ParsePosix reads mode, uid and gid from an object's metadata. A value that
// is present but malformed is left out (its Has flag false) and reported in
// err, one line per key, so the caller can warn and go on: a mode must be
// octal and fit st_mode (this also refuses s3fs's decimal modes, which
// would otherwise read as wrong octal bits), an id decimal below 2^32-1
// (-1 means "unchanged" to chown).
func ParsePosix(meta map[string]string) (p Posix, err error) {
	var errs []error
	if s, ok := meta[metaMode]; ok {
		v, perr := strconv.ParseUint(s, 8, 32)
		if perr != nil || v > maxStMode {
			errs = append(errs, fmt.Errorf("x-amz-meta-mode %q is not an octal file mode; ignored", s))
		} else {
			p.Mode, p.HasMode = uint32(v), true
		}
	}
	id := func(key string, into *uint32, has *bool) {
		s, ok := meta[key]
		if !ok {
			return
		}
		v, perr := strconv.ParseUint(s, 10, 32)
		if perr != nil || v == 1<<32-1 {
			errs = append(errs, fmt.Errorf("x-amz-meta-%s %q is not a decimal id; ignored", key, s))
			return
		}
		*into, *has = uint32(v), true
	}
	id(metaUID, &p.UID, &p.HasUID)
	id(metaGID, &p.GID, &p.HasGID)
	return p, errors.Join(errs...)
}
