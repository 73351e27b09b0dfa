package syncer

import "github.com/s3sync/s3sync/cache"

// LinkSuffix ends the key of an object that stores a symlink: its body is
// the link's target. This is rclone's --links format, so rclone restores
// such objects as links too.
const LinkSuffix = cache.LinkSuffix
