package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/syncer"
)

func TestMaxDeleteAllows(t *testing.T) {
	for _, c := range []struct {
		flag     string // "" for the default
		n, total int64
		want     bool
	}{
		{"", 20, 20, true},   // a small tree may be emptied
		{"", 21, 40, false},  // over 20 and over half
		{"", 50, 100, true},  // half is not over half
		{"", 51, 100, false}, //
		{"", 812, 1000, false},
		{"", 0, 0, true},
		{"812", 812, 1000, true},
		{"811", 812, 1000, false},
		{"0", 1, 1, false},
		{"-1", 1000, 1000, true},
		{"100%", 1000, 1000, true},
		{"10%", 10, 100, true},
		{"10%", 11, 100, false},
		{"10%", 1, 5, false}, // no minimum count once a share is given
		{"0%", 0, 5, true},
	} {
		m := syncer.MaxDelete{}
		if c.flag != "" {
			var err error
			if m, err = syncer.ParseMaxDelete(c.flag); err != nil {
				t.Fatalf("%q: %v", c.flag, err)
			}
		}
		if got := m.Allows(c.n, c.total); got != c.want {
			t.Errorf("--max-delete %q: %d of %d allowed=%v, want %v", c.flag, c.n, c.total, got, c.want)
		}
	}
	for _, bad := range []string{"", "x", "-2", "101%", "-1%", "5 files"} {
		if _, err := syncer.ParseMaxDelete(bad); err == nil {
			t.Errorf("--max-delete %q accepted", bad)
		}
	}
}

// reconcile --delete where the source lost most of what the destination
// holds: by default nothing is deleted (the transfers still happen) and the
// error says how many and how to allow it; --max-delete allows it. Both
// directions, and --dryrun says the same as a real run.
func TestReconcileMaxDelete(t *testing.T) {
	e := synctest.NewEnv(t)
	const total = 30
	for _, c := range []struct {
		name      string
		download  bool
		limit     string // "" for the default
		dry       bool
		wantGone  bool
		wantError bool
	}{
		{name: "upload refused", wantError: true},
		{name: "upload dryrun refused", dry: true, wantError: true},
		{name: "upload allowed by count", limit: "26", wantGone: true},
		{name: "upload dryrun allowed", limit: "100%", dry: true},
		{name: "download refused", download: true, wantError: true},
		{name: "download allowed", download: true, limit: "-1", wantGone: true},
		{name: "download allowed by share", download: true, limit: "90%", wantGone: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			full, few := t.TempDir(), t.TempDir()
			for i := range total {
				testfs.WriteFile(t, fmt.Sprintf("%s/f%02d.txt", full, i), "x")
			}
			for i := range 4 {
				testfs.WriteFile(t, fmt.Sprintf("%s/f%02d.txt", few, i), "x")
			}
			url := "s3://" + e.Bucket + "/" + strings.ReplaceAll(c.name, " ", "-")
			// The destination holds 30 files; the source 4 of them and a
			// new one. 26 of 30 would go.
			src, dst := few, url
			if c.download {
				e.Sync(few, url, nil)
				src, dst = url, full
			} else {
				e.Sync(full, url, nil)
			}
			testfs.WriteFile(t, few+"/new.txt", "new")
			if c.download {
				e.Sync(few, url, nil)
			}

			s, _ := syncer.ParseEndpoint(src)
			d, _ := syncer.ParseEndpoint(dst)
			l := &synctest.Log{}
			opts := syncer.Options{Report: l.Report, Concurrency: 8, Delete: true, DryRun: c.dry}
			if c.limit != "" {
				opts.MaxDelete, _ = syncer.ParseMaxDelete(c.limit)
			}
			sum, err := syncer.Reconcile(context.Background(), e.Client, s, d, opts)

			var refused *syncer.DeleteRefusal
			if c.wantError != errors.As(err, &refused) {
				t.Fatalf("err = %v, want a refusal: %v", err, c.wantError)
			}
			if refused != nil {
				msg := refused.Error()
				for _, want := range []string{"delete 26 of 30", "(87%)", "nothing was deleted", "--max-delete 26"} {
					if !strings.Contains(msg, want) {
						t.Errorf("refusal %q lacks %q", msg, want)
					}
				}
			}
			var held int
			if c.download {
				ents, _ := os.ReadDir(full)
				held = len(ents)
			} else {
				held = len(e.Srv.Objects(t, e.Bucket, strings.TrimPrefix(url, "s3://"+e.Bucket+"/")+"/"))
			}
			wantHeld := total + 1 // and new.txt
			if c.wantGone {
				wantHeld = 5
			}
			if c.dry {
				wantHeld = total
			}
			if held != wantHeld {
				t.Errorf("destination holds %d, want %d (summary %+v, events %q)", held, wantHeld, sum, l.Sorted())
			}
			deletes := 0
			for _, line := range l.Sorted() {
				if strings.HasPrefix(line, "delete ") {
					deletes++
				}
			}
			if wantDeletes := map[bool]int{true: 26}[c.wantGone || (c.dry && !c.wantError)]; deletes != wantDeletes || (!c.dry && sum.Deleted != int64(wantDeletes)) {
				t.Errorf("%d delete events, %d deleted; want %d", deletes, sum.Deleted, wantDeletes)
			}
			if !c.dry && sum.Uploaded+sum.Downloaded != 1 {
				t.Errorf("new.txt not transferred: %+v", sum)
			}
		})
	}
}

// A download of "x/y" needs the local file "x" gone first: it waits for
// the decision on deletions, and is skipped with a reason when they are
// refused.
func TestReconcileMaxDeleteFileBecomesFolder(t *testing.T) {
	e := synctest.NewEnv(t)
	url := "s3://" + e.Bucket
	e.Srv.Put(t, e.Bucket, "x/y", "below", nil)
	e.Srv.Put(t, e.Bucket, "z", "zed", nil)
	for _, c := range []struct {
		limit   string
		allowed bool
	}{{"0", false}, {"", true}} {
		dst := t.TempDir()
		testfs.WriteFile(t, dst+"/x", "a file where the bucket has a folder")
		testfs.WriteFile(t, dst+"/z", "zed")
		// Older than the object, as a download leaves it: z is in sync
		// whichever second the object and this file were written in (a
		// local file newer than its object is downloaded again).
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(dst+"/z", old, old); err != nil {
			t.Fatal(err)
		}
		s, _ := syncer.ParseEndpoint(url)
		d, _ := syncer.ParseEndpoint(dst)
		l := &synctest.Log{}
		opts := syncer.Options{Report: l.Report, Concurrency: 8, Delete: true}
		if c.limit != "" {
			opts.MaxDelete, _ = syncer.ParseMaxDelete(c.limit)
		}
		sum, err := syncer.Reconcile(context.Background(), e.Client, s, d, opts)
		if c.allowed {
			if err != nil || sum.Deleted != 1 || sum.Downloaded != 1 {
				t.Fatalf("allowed: %v %+v %q", err, sum, l.Sorted())
			}
			if got := synctest.ReadFile(t, dst+"/x/y"); got != "below" {
				t.Errorf("x/y = %q", got)
			}
			continue
		}
		if !errors.Is(err, syncer.ErrTooManyDeletes) || sum.Deleted != 0 || sum.Skipped != 1 {
			t.Fatalf("refused: %v %+v %q", err, sum, l.Sorted())
		}
		if got := synctest.ReadFile(t, dst+"/x"); !strings.HasPrefix(got, "a file") {
			t.Errorf("refused, yet x = %q", got)
		}
		if lines := l.Sorted(); len(lines) != 1 || !strings.Contains(lines[0], "skipped "+url+"/x/y") {
			t.Errorf("events %q", lines)
		}
	}
}
