package fs

import "github.com/s3sync/s3sync/third_party/go-fuse/fuse"

func setBlocks(out *fuse.Attr) {
}
