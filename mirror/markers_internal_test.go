package mirror

import (
	"testing"

	"github.com/s3sync/s3sync/cache"
)

// A marker's key is the same whether it is asked for by the directory's
// path or by its cache key: a doubled slash would be another object, and a
// removal would leave the marker behind.
func TestObjectRelMarker(t *testing.T) {
	for _, rel := range []string{"a/b", "a/b/"} {
		if got := objectRel(rel, cache.KindDir); got != "a/b/" {
			t.Errorf("objectRel(%q, KindDir) = %q, want a/b/", rel, got)
		}
	}
}
