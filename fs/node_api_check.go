package fs

import (
	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
)

// The go-fuse interfaces Node overrides. Everything else (Lookup, Getattr,
// Readlink, Readdir, Statfs, Getxattr, Listxattr, Statx, ...) is go-fuse's
// loopback, promoted from the embedded *fs.LoopbackNode: it only reads.
var (
	_ = (gofs.NodeWrapChilder)((*Node)(nil))
	_ = (gofs.NodeSetattrer)((*Node)(nil))
	_ = (gofs.NodeSetxattrer)((*Node)(nil))
	_ = (gofs.NodeRemovexattrer)((*Node)(nil))
	_ = (gofs.NodeMkdirer)((*Node)(nil))
	_ = (gofs.NodeMknoder)((*Node)(nil))
	_ = (gofs.NodeSymlinker)((*Node)(nil))
	_ = (gofs.NodeLinker)((*Node)(nil))
	_ = (gofs.NodeUnlinker)((*Node)(nil))
	_ = (gofs.NodeRmdirer)((*Node)(nil))
	_ = (gofs.NodeRenamer)((*Node)(nil))
	_ = (gofs.NodeOpener)((*Node)(nil))
	_ = (gofs.NodeCreater)((*Node)(nil))
	_ = (gofs.NodeTmpfiler)((*Node)(nil))
	_ = (gofs.NodeCopyFileRanger)((*Node)(nil))
	_ = (gofs.NodeOpendirHandler)((*Node)(nil))
	// Read-only ops we rely on the loopback for.
	_ = (gofs.NodeLookuper)((*Node)(nil))
	_ = (gofs.NodeGetattrer)((*Node)(nil))
	_ = (gofs.NodeReadlinker)((*Node)(nil))
	_ = (gofs.NodeStatfser)((*Node)(nil))
)

// The file-handle interfaces fileHandle overrides; the rest (Getattr, Lseek,
// locks, Ioctl, Statx) is go-fuse's loopback file.
var (
	_ = (gofs.FilePassthroughFder)((*fileHandle)(nil))
	_ = (gofs.FileReader)((*fileHandle)(nil))
	_ = (gofs.FileWriter)((*fileHandle)(nil))
	_ = (gofs.FileWritever)((*fileHandle)(nil))
	_ = (gofs.FileAllocater)((*fileHandle)(nil))
	_ = (gofs.FileFlusher)((*fileHandle)(nil))
	_ = (gofs.FileFsyncer)((*fileHandle)(nil))
	_ = (gofs.FileReleaser)((*fileHandle)(nil))
	_ = (gofs.FileGetattrer)((*fileHandle)(nil))
	_ = (gofs.FileLseeker)((*fileHandle)(nil))
	_ = (gofs.FileSetattrer)((*fileHandle)(nil))
)

// The directory-handle interfaces dirHandle implements.
var (
	_ = (gofs.FileReaddirenter)((*dirHandle)(nil))
	_ = (gofs.FileSeekdirer)((*dirHandle)(nil))
	_ = (gofs.FileReleasedirer)((*dirHandle)(nil))
	_ = (gofs.FileFsyncdirer)((*dirHandle)(nil))
	_ = (gofs.FileIoctler)((*dirHandle)(nil))
)
