package main

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
)

// Downloads restore permission bits; --metadata also setuid and, as root,
// the owner. A malformed mode is one warning line, and the run succeeds.
func TestCLIReconcileMetadata(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	srv.Put(t, b, "su", "x", map[string]string{"mode": "104755", "uid": "1234", "gid": "5678"})
	srv.Put(t, b, "s3fs", "x", map[string]string{"mode": "33188"})
	stat := func(path string) syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}

	plain := t.TempDir()
	r := s3sync(t, "reconcile", ep, "s3://"+b, plain)
	wantCode(t, r, 0)
	if st := stat(plain + "/su"); st.Mode&0o7777 != 0o755 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("without --metadata: su has mode %04o owner %d, want 0755 and ours", st.Mode&0o7777, st.Uid)
	}
	want := "warning: s3://" + b + "/s3fs: x-amz-meta-mode \"33188\" is not an octal file mode; ignored"
	// Whoever writes the bucket must not make setuid files here unasked.
	wantSU := "warning: s3://" + b + "/su: x-amz-meta-mode 104755 asks for setuid, setgid or sticky bits; only 755 is restored (--metadata restores them)"
	if !strings.Contains(r.stderr, want+"\n") || !strings.Contains(r.stderr, wantSU+"\n") || strings.Count(r.stderr, "warning") != 2 {
		t.Errorf("stderr should have the two warnings %q and %q\n%s", want, wantSU, r)
	}

	testenv.NeedRoot(t, "restoring owners")
	full := t.TempDir()
	r = s3sync(t, "reconcile", ep, "--metadata", "s3://"+b, full)
	wantCode(t, r, 0)
	if st := stat(full + "/su"); st.Mode&0o7777 != 0o4755 || st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("with --metadata: su has mode %04o owner %d:%d, want 4755 and 1234:5678", st.Mode&0o7777, st.Uid, st.Gid)
	}
}
