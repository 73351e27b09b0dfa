package cache

import (
	"fmt"
	"time"

	"github.com/s3sync/s3sync/internal/binenc"
)

var bucketConflicts = []byte("conflicts")

// ConflictKind says how this side and another writer disagreed on a path.
type ConflictKind uint8

const (
	// ConflictChanged: changed here and there. The remote path keeps the
	// other writer's version; this side's is stored as Conflict.Copy.
	ConflictChanged ConflictKind = iota + 1
	// ConflictDeleted: deleted here, changed there. The other writer's
	// version was left in place.
	ConflictDeleted
)

func (k ConflictKind) String() string {
	switch k {
	case ConflictChanged:
		return "changed here and there"
	case ConflictDeleted:
		return "deleted here, changed there"
	}
	return "unknown"
}

// Conflict is an open conflict on a path (the map key, WORKDIR-relative).
// While it is open, the path's cache entry keeps the version this side last
// saw, so every later upload of the path is refused again rather than
// replacing the other writer's version; the copy is refreshed instead.
type Conflict struct {
	Kind ConflictKind
	// Copy is the conflict copy's path (its key below the prefix), where
	// this side's version went; "" for ConflictDeleted. CopyETag is what
	// this side last wrote there.
	Copy     string
	CopyETag string
	// RemoteETag is the other writer's version as this side saw it.
	RemoteETag string
	// Since is when the conflict was found, Updated when the copy was
	// last written.
	Since, Updated time.Time
}

const conflictVersion = 1

func (c *Conflict) marshal() []byte {
	b := []byte{conflictVersion, byte(c.Kind)}
	b = binenc.AppendString(b, c.Copy)
	b = binenc.AppendString(b, c.CopyETag)
	b = binenc.AppendString(b, c.RemoteETag)
	b = binenc.AppendTime(b, c.Since)
	return binenc.AppendTime(b, c.Updated)
}

func unmarshalConflict(data []byte) (Conflict, error) {
	d := binenc.Decoder{B: data}
	if v := d.Byte(); v != conflictVersion {
		return Conflict{}, fmt.Errorf("conflict version %d: %w", v, errCorrupt)
	}
	c := Conflict{Kind: ConflictKind(d.Byte()), Copy: d.String(), CopyETag: d.String(), RemoteETag: d.String(), Since: d.Time(), Updated: d.Time()}
	if d.Bad {
		return Conflict{}, errCorrupt
	}
	return c, nil
}

var conflictTable = side[Conflict]{name: bucketConflicts, encode: func(c Conflict) []byte { return c.marshal() }, decode: unmarshalConflict}

// GetConflict returns the open conflict on path, if any.
func (c *Cache) GetConflict(path string) (Conflict, bool, error) {
	cf, ok, err := conflictTable.get(c, path)
	if err != nil {
		return Conflict{}, false, fmt.Errorf("cache: get conflict %q: %w", path, err)
	}
	return cf, ok, nil
}

// PutConflict records (or replaces) the open conflict on path; it is
// durable on return.
func (c *Cache) PutConflict(path string, cf Conflict) error {
	if err := conflictTable.put(c, path, cf); err != nil {
		return fmt.Errorf("cache: put conflict %q: %w", path, err)
	}
	return nil
}

// CloseConflict forgets the conflict on path and reports whether there
// was one. Without one it only reads (no commit, no fsync): it runs after
// every upload.
func (c *Cache) CloseConflict(path string) (bool, error) {
	if _, ok, err := c.GetConflict(path); err != nil || !ok {
		return false, err
	}
	if err := conflictTable.delete(c, path); err != nil {
		return false, fmt.Errorf("cache: close conflict %q: %w", path, err)
	}
	return true, nil
}

// Conflicts calls fn for every open conflict, in path order.
func (c *Cache) Conflicts(fn func(path string, cf Conflict) error) error {
	return conflictTable.each(c, fn)
}
