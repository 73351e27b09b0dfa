package mirror

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lstatBeneath is os.Lstat of rel (slash-separated) below root that
// resolves no symlink on the way. A parent of rel that is now a symlink,
// or no longer a directory, means rel is gone from WORKDIR whatever that
// link leads to: it returns ENOTDIR (see notExist). Looking through the
// link instead would store files from elsewhere, outside WORKDIR even,
// under rel's keys (rm -r conf; ln -s ~/secrets conf), and keep rel's old
// objects.
func lstatBeneath(root, rel string) (os.FileInfo, error) {
	p := root
	for {
		part, rest, more := strings.Cut(rel, "/")
		if !more || rest == "" {
			break
		}
		p, rel = filepath.Join(p, part), rest
		info, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			return nil, &fs.PathError{Op: "lstat", Path: p, Err: syscall.ENOTDIR}
		}
	}
	return os.Lstat(filepath.Join(p, rel))
}
