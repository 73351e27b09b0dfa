package syncer

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/remote"
)

// Restore says what a download restores from the object's mode, uid and
// gid metadata (rclone's --metadata keys). The permission bits (0777) are
// always restored when the object has a mode; without one the file keeps
// the default (0644 less the umask), as the AWS CLI leaves it.
type Restore struct {
	// Special restores the setuid, setgid and sticky bits too. The
	// metadata comes from whoever could write to the bucket, so, as
	// rclone does, these are restored only when asked.
	Special bool
	// Owner restores uid and gid; it needs root.
	Owner bool
	// Warn hears of mode, uid or gid metadata that was malformed and
	// ignored (the download itself succeeds); nil drops it.
	Warn func(error)
}

// apply gives the downloaded file f the owner and mode info's metadata
// holds, as far as o allows. Owner first: chown clears setuid and setgid.
func (o Restore) apply(f *os.File, info remote.Info) error {
	return o.applyAs(f, info, unix.S_IFREG)
}

// applyAs is apply for f of file type typ (unix.S_IFREG, or S_IFDIR for a
// directory made from its marker): a mode of another type is ignored.
func (o Restore) applyAs(f *os.File, info remote.Info, typ uint32) error {
	warn := func(err error) {
		if o.Warn != nil {
			o.Warn(err)
		}
	}
	p := info.Posix
	if info.PosixErr != nil {
		warn(info.PosixErr)
	}
	if t := p.Mode & unix.S_IFMT; p.HasMode && t != 0 && t != typ {
		what := "a regular file's"
		if typ == unix.S_IFDIR {
			what = "a directory's"
		}
		warn(fmt.Errorf("x-amz-meta-mode %o is not %s mode; ignored", p.Mode, what))
		p.HasMode = false
	}
	if p.HasMode && !o.Special && p.Mode&0o7000 != 0 {
		// Whoever can write the bucket could otherwise make a setuid
		// file here; rclone restores these bits only when asked, too.
		warn(fmt.Errorf("x-amz-meta-mode %o asks for setuid, setgid or sticky bits; only %o is restored (--metadata restores them)", p.Mode, p.Mode&0o777))
	}
	if !p.HasMode && !(o.Owner && (p.HasUID || p.HasGID)) {
		return nil
	}
	// A fresh file mostly has the owner and mode wanted already; chown and
	// chmod each cost a journal update per file in a clone, fstat nothing.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	uid, gid := -1, -1
	if o.Owner && p.HasUID && p.UID != st.Uid {
		uid = int(p.UID)
	}
	if o.Owner && p.HasGID && p.GID != st.Gid {
		gid = int(p.GID)
	}
	if uid != -1 || gid != -1 {
		if err := unix.Fchown(int(f.Fd()), uid, gid); err != nil {
			return fmt.Errorf("set owner %d:%d from the object's metadata: %w", p.UID, p.GID, err)
		}
	}
	if !p.HasMode {
		return nil
	}
	mode := p.Mode & 0o777
	if o.Special {
		mode = p.Mode & 0o7777
	}
	if st.Mode&0o7777 == mode {
		return nil // a fresh file has no setuid for chown to have cleared
	}
	// unix.Fchmod, not f.Chmod: os.FileMode keeps setuid elsewhere than
	// st_mode does.
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		return fmt.Errorf("set mode %o from the object's metadata: %w", mode, err)
	}
	return nil
}
