package syncer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// --storage-class is sent on every upload (single and multipart) and copy.
// Versity Gateway's posix backend stores no storage class, so the test
// watches the requests on their way to it.
func TestStorageClass(t *testing.T) {
	e := synctest.NewEnv(t)
	p := synctest.NewProxy(t, e.Srv.Endpoint)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: p.URL, MultipartThreshold: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/small", "x")
	testfs.WriteFile(t, dir+"/large", strings.Repeat("L", 6<<20))
	url := "s3://" + e.Bucket
	sc := func(o *syncer.Options) { o.StorageClass = "STANDARD_IA" }
	synctest.RunSync(t, c, dir, url+"/up", sc)
	synctest.RunSync(t, c, url+"/up", url+"/copy", sc)
	p.Mu.Lock()
	defer p.Mu.Unlock()
	want := []string{
		"PUT /" + e.Bucket + "/up/small",
		"POST /" + e.Bucket + "/up/large?uploads",
		"PUT /" + e.Bucket + "/copy/small",
		"PUT /" + e.Bucket + "/copy/large",
	}
	for _, w := range want {
		if p.Classes[w] != "STANDARD_IA" {
			t.Errorf("%s: storage class %q; all requests with one: %v", w, p.Classes[w], p.Classes)
		}
	}
}

func TestGlacierSkipped(t *testing.T) {
	e := synctest.NewEnv(t)
	e.Srv.Put(t, e.Bucket, "cold", "frozen", nil)
	e.Srv.Put(t, e.Bucket, "warm", "ok", nil)
	p := synctest.NewProxy(t, e.Srv.Endpoint)
	p.Rewrite = func(b string) string {
		parts := strings.Split(b, "<Contents>")
		for i, c := range parts {
			if strings.Contains(c, "<Key>cold</Key>") {
				parts[i] = strings.Replace(c, "<StorageClass>STANDARD</StorageClass>", "<StorageClass>GLACIER</StorageClass>", 1)
			}
		}
		return strings.Join(parts, "<Contents>")
	}
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: p.URL})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	sum, lines := synctest.RunSync(t, c, "s3://"+e.Bucket, dst, nil)
	if sum.Downloaded != 1 || sum.Skipped != 1 {
		t.Errorf("want warm downloaded and cold skipped: %+v %q", sum, lines)
	}
	sum, _ = synctest.RunSync(t, c, "s3://"+e.Bucket, dst, func(o *syncer.Options) { o.ForceGlacier = true })
	if sum.Downloaded != 1 || sum.Skipped != 0 {
		t.Errorf("--force-glacier-transfer: %+v", sum)
	}
}
