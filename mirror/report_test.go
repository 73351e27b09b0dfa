package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/syncer"
)

// TestStatusPendingBytes: status sizes the pending files by stat, up to
// pendingStatLimit of them; past that the size is a lower bound and says so.
func TestStatusPendingBytes(t *testing.T) {
	for _, n := range []int{pendingStatLimit, pendingStatLimit + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			work := t.TempDir()
			st := synctest.OpenState(t)
			j := st.Journal()
			for i := range n {
				name := fmt.Sprintf("f%04d", i)
				if err := os.WriteFile(filepath.Join(work, name), []byte("0123456789"), 0o644); err != nil {
					t.Fatal(err)
				}
				j.Changed(name)
			}
			j.Removed("gone", false) // nothing to measure
			if err := j.Sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			rep, err := BuildReport(MountInfo{Workdir: work}, st, false, State{})
			if err != nil {
				t.Fatal(err)
			}
			partial := n > pendingStatLimit
			if rep.Pending != n+1 || rep.PendingBytes != int64(10*min(n, pendingStatLimit)) || rep.PendingBytesPartial != partial {
				t.Errorf("pending %d, %d bytes, partial %v; want %d, %d bytes, partial %v",
					rep.Pending, rep.PendingBytes, rep.PendingBytesPartial, n+1, 10*min(n, pendingStatLimit), partial)
			}
		})
	}
}

// A file that kept changing during every upload is shown as such, with how
// long it has been out of date, apart from ordinary retries.
func TestStatusKeepsChanging(t *testing.T) {
	st := synctest.OpenState(t)
	j := st.Journal()
	j.Changed("vm.img")
	j.Changed("other")
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := j.Pending(func(r journal.Record) bool {
		cause := syncer.ErrKeepsChanging
		if r.Path == "other" {
			cause = errors.New("503 SlowDown")
		}
		if err := j.Retry(r, cause); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := BuildReport(MountInfo{Workdir: t.TempDir()}, st, false, State{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.KeepsChanging) != 1 || rep.KeepsChanging[0].Path != "vm.img" || rep.KeepsChanging[0].Since.IsZero() {
		t.Errorf("keeps_changing = %+v, want vm.img with its age", rep.KeepsChanging)
	}
	if len(rep.Retrying) != 1 || rep.Retrying[0].Path != "other" {
		t.Errorf("retrying = %+v, want only other", rep.Retrying)
	}
}
