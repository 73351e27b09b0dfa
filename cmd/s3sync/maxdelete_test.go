package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// A folder that lost most of its files (an emptied disk, a wrong path)
// synced with --delete: reconcile uploads what is new, deletes nothing,
// says so in one line with the flag that allows it, and exits 2; --dryrun
// says the same; the flag then deletes.
func TestCLIReconcileMaxDelete(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	url := "s3://" + b + "/pfx/"
	dir := t.TempDir()
	for i := range 40 {
		testfs.WriteFile(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), "x")
	}
	wantCode(t, s3sync(t, "reconcile", ep, dir, url), 0)
	for i := range 30 {
		os.Remove(filepath.Join(dir, fmt.Sprintf("f%02d", i)))
	}
	testfs.WriteFile(t, filepath.Join(dir, "new"), "new")

	for _, c := range []struct {
		args []string
		code int
		want string // on stderr's last line
		held int    // objects in the bucket afterwards
	}{
		{[]string{"--dryrun"}, 2, "would refuse to delete 30 of 40 objects at " + url + " (75%), over --max-delete's default of 50%; nothing was deleted. To delete them, run again with --max-delete 30 (or 100%)", 40},
		{nil, 2, "s3sync: refusing to delete 30 of 40 objects at " + url + " (75%), over --max-delete's default of 50%; nothing was deleted. To delete them, run again with --max-delete 30 (or 100%)", 41},
		{[]string{"--max-delete", "29"}, 2, "over --max-delete 29;", 41},
		{[]string{"--max-delete", "30", "--dryrun"}, 0, "dry run: 30 operations planned", 41},
		{[]string{"--max-delete", "30"}, 0, "deleted 30", 11},
	} {
		args := append([]string{"reconcile", ep, "--delete"}, c.args...)
		r := s3sync(t, append(args, dir, url)...)
		wantCode(t, r, c.code)
		lines := r.errLines()
		if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], c.want) {
			t.Errorf("stderr's last line lacks %q\n%s", c.want, r)
		}
		if c.code == 2 && (len(lines) != 2 || strings.Contains(r.stdout, "delete:")) {
			t.Errorf("want the summary and the refusal, no deletes\n%s", r)
		}
		if got := len(srv.Objects(t, b, "pfx/")); got != c.held {
			t.Errorf("bucket holds %d objects, want %d\n%s", got, c.held, r)
		}
	}

	r := s3sync(t, "reconcile", ep, "--delete", "--max-delete", "lots", dir, url)
	wantCode(t, r, 2)
	wantOneErrLine(t, r, `--max-delete "lots"`, "-1 for no limit")
}
