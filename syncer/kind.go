package syncer

import "github.com/s3sync/s3sync/cache"

// LinkSuffix ends the key of an object that stores a symlink: its body is
// the link's target. This is rclone's --links format, so rclone restores
// such objects as links too.
const LinkSuffix = cache.LinkSuffix

// objectRel is the key suffix (below the prefix) that stores WORKDIR's rel
// as kind k: a file under its path, a symlink as path+".rclonelink", an
// empty directory as the marker path+"/".
func objectRel(rel string, k cache.Kind) string { return cache.ObjectRel(rel, k) }
