package mirror_test

import (
	"strings"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/synctest"
)

func TestMain(m *testing.M) { s3test.Main(m) }

func wantKeys(t *testing.T, d *drainEnv, what string, want ...string) {
	t.Helper()
	got := synctest.Keys(d.Srv.Objects(t, d.Bucket, "w/"))
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: bucket holds %q, want %q", what, got, want)
	}
}
