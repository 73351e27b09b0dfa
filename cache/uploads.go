package cache

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/s3sync/s3sync/internal/binenc"
)

var bucketUploads = []byte("uploads")

// Upload is a multipart upload in progress, kept so that one interrupted by
// a crash can continue from its finished parts, and so that one left behind
// can be found and aborted (an unfinished upload keeps costing storage).
type Upload struct {
	Key string
	// ID is the store's upload id; "" while it is being created.
	ID string
	// The file's state when the upload began: it may only be continued
	// while the file is still exactly so.
	Size         int64
	Mtime, Ctime time.Time
	Ino          uint64
	Started      time.Time
}

const uploadVersion = 1

func (u *Upload) marshal() []byte {
	b := []byte{uploadVersion}
	b = binenc.AppendString(b, u.Key)
	b = binenc.AppendString(b, u.ID)
	b = binary.AppendVarint(b, u.Size)
	b = binenc.AppendTime(b, u.Mtime)
	b = binenc.AppendTime(b, u.Ctime)
	b = binary.AppendUvarint(b, u.Ino)
	return binenc.AppendTime(b, u.Started)
}

func unmarshalUpload(data []byte) (Upload, error) {
	d := binenc.Decoder{B: data}
	if v := d.Byte(); v != uploadVersion {
		return Upload{}, fmt.Errorf("upload version %d: %w", v, errCorrupt)
	}
	u := Upload{Key: d.String(), ID: d.String(), Size: d.Varint(), Mtime: d.Time(), Ctime: d.Time(), Ino: d.Uvarint(), Started: d.Time()}
	if d.Bad {
		return Upload{}, errCorrupt
	}
	return u, nil
}

var uploadTable = side[Upload]{name: bucketUploads, encode: func(u Upload) []byte { return u.marshal() }, decode: unmarshalUpload}

// GetUpload returns the upload in progress for path, if any.
func (c *Cache) GetUpload(path string) (Upload, bool, error) {
	u, ok, err := uploadTable.get(c, path)
	if err != nil {
		return Upload{}, false, fmt.Errorf("cache: get upload %q: %w", path, err)
	}
	return u, ok, nil
}

// PutUpload records path's upload in progress; it is durable on return.
func (c *Cache) PutUpload(path string, u Upload) error {
	if err := uploadTable.put(c, path, u); err != nil {
		return fmt.Errorf("cache: put upload %q: %w", path, err)
	}
	return nil
}

// DeleteUpload forgets path's upload in progress.
func (c *Cache) DeleteUpload(path string) error {
	if err := uploadTable.delete(c, path); err != nil {
		return fmt.Errorf("cache: delete upload %q: %w", path, err)
	}
	return nil
}

// Uploads calls fn for every upload in progress.
func (c *Cache) Uploads(fn func(path string, u Upload) error) error {
	return uploadTable.each(c, fn)
}
