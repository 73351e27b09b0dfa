package cache

import (
	"os"
	"syscall"
)

// OwnerOf is the permission bits (07777), uid and gid of info (an lstat
// or stat result); ok is false where the system gives no stat_t.
func OwnerOf(info os.FileInfo) (mode, uid, gid uint32, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, 0, false
	}
	return st.Mode & 0o7777, st.Uid, st.Gid, true
}

// MetaDiffers reports whether info's permission bits or owner differ from
// what e's object holds (a chmod or chown since). An entry without Meta
// never differs: it predates metadata, and reporting every such path at
// once would re-touch every object of an upgraded mount.
func (e Entry) MetaDiffers(info os.FileInfo) bool {
	if !e.Meta {
		return false
	}
	mode, uid, gid, ok := OwnerOf(info)
	return ok && (mode != e.Mode || uid != e.UID || gid != e.GID)
}
