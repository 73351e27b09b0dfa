package mirror_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
)

// A first mount over a bucket that already holds the tree sends nothing
// again: every file, over several of the batches the seeding writes while
// it lists, is in the cache, and the start-up scan finds nothing to send.
func TestSeedCacheManyFiles(t *testing.T) {
	e := synctest.NewEnv(t)
	src := t.TempDir()
	const n = 5000 // more than two of SeedCache's batches
	for i := range n {
		d := filepath.Join(src, fmt.Sprintf("d%02d", i%50))
		if i < 50 {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.Sync(src, "s3://"+e.Bucket+"/w", nil)
	c := openCache(t)
	loc, _ := remote.ParseURL("s3://" + e.Bucket + "/w")
	seeded, err := mirror.SeedCache(context.Background(), e.Client, c, src, loc)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Len(); seeded != n || got != n {
		t.Errorf("seeded %d, cache holds %d; want %d", seeded, got, n)
	}
	var changed int
	if err := c.Scan(src, nil, func(string) { changed++ }, func(string) { changed++ }); err != nil {
		t.Fatal(err)
	}
	if changed != 0 {
		t.Errorf("the start-up scan after seeding would send %d paths again; want 0", changed)
	}
}
