package syncer_test

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// interloper is another writer that strikes between the run's listing and
// its writes: before the first request for a key it names, it writes that
// key itself.
type interloper struct {
	syncer.Remote
	mu     sync.Mutex
	strike map[string]func()
}

func (i *interloper) before(key string) {
	i.mu.Lock()
	f := i.strike[key]
	delete(i.strike, key)
	i.mu.Unlock()
	if f != nil {
		f()
	}
}

func (i *interloper) Upload(ctx context.Context, bucket, key string, r io.ReaderAt, size int64, o remote.PutOptions) (remote.Uploaded, error) {
	i.before(key)
	return i.Remote.Upload(ctx, bucket, key, r, size, o)
}

func (i *interloper) DeleteIf(ctx context.Context, bucket string, items []remote.DeleteItem, single bool) ([]remote.DeleteError, error) {
	for _, it := range items {
		i.before(it.Key)
	}
	return i.Remote.DeleteIf(ctx, bucket, items, single)
}

func (i *interloper) Delete(ctx context.Context, bucket string, keys []string) ([]remote.DeleteError, error) {
	for _, k := range keys {
		i.before(k)
	}
	return i.Remote.Delete(ctx, bucket, keys)
}

// reconcile --if-unchanged: a key another writer changed (or made) after
// the listing is not overwritten nor deleted; each is reported as a
// conflict and counted as failed. Without the flag the same run overwrites
// and deletes, as aws s3 sync does.
func TestReconcileIfUnchanged(t *testing.T) {
	for _, flag := range []bool{true, false} {
		name := "if-unchanged"
		if !flag {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			e := synctest.NewEnv(t)
			src := t.TempDir()
			for _, f := range []string{"changed", "new", "same"} {
				os.WriteFile(src+"/"+f, []byte("local "+f+", newer"), 0o644)
			}
			e.Srv.Put(t, e.Bucket, "p/changed", "old", nil)
			e.Srv.Put(t, e.Bucket, "p/gone", "to delete", nil)
			il := &interloper{Remote: e.Client, strike: map[string]func(){}}
			for _, k := range []string{"p/changed", "p/new", "p/gone"} {
				il.strike[k] = func() { e.Srv.Put(t, e.Bucket, k, "theirs", nil) }
			}
			sum, lines := synctest.RunSync(t, il, src, "s3://"+e.Bucket+"/p", func(o *syncer.Options) {
				o.Delete, o.IfUnchanged = true, flag
				o.MaxDelete = syncer.MaxDelete{Set: true, Count: -1}
			})
			objs := map[string]string{}
			for k := range e.Srv.Objects(t, e.Bucket, "p/") {
				objs[k], _ = e.Srv.Get(t, e.Bucket, k)
			}
			if !flag {
				if objs["p/changed"] == "theirs" || objs["p/new"] == "theirs" {
					t.Errorf("without the flag the run should overwrite (the test proves nothing): %v", objs)
				}
				return
			}
			for _, k := range []string{"p/changed", "p/new", "p/gone"} {
				if objs[k] != "theirs" {
					t.Errorf("%s holds %q, want the other writer's version kept", k, objs[k])
				}
			}
			if objs["p/same"] != "local same, newer" {
				t.Errorf("p/same holds %q: untouched keys must still be written", objs["p/same"])
			}
			if sum.Failed != 3 || sum.Uploaded != 1 || sum.Deleted != 0 {
				t.Errorf("summary %+v, want 3 failed (conflicts), 1 uploaded, 0 deleted; lines %q", sum, lines)
			}
			n := 0
			for _, l := range lines {
				if strings.Contains(l, "--if-unchanged") {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%d conflict lines, want 3: %q", n, lines)
			}
		})
	}
}
