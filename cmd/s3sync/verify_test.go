package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/state"
)

// sameSizeSameMtime changes one byte of path and puts its mtime back: the
// change aws s3 sync cannot see.
func sameSizeSameMtime(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte(readFile(t, path))
	b[0] ^= 0x20
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// jsonLines decodes --json output: findings, then the summary.
func jsonLines(t *testing.T, r result) ([]jsonFinding, jsonSummary) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var fs []jsonFinding
	for _, l := range lines[:len(lines)-1] {
		var f jsonFinding
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("%q: %v\n%s", l, err, r)
		}
		fs = append(fs, f)
	}
	var s jsonSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Kind != "summary" {
		t.Fatalf("last line is not the summary: %v\n%s", err, r)
	}
	return fs, s
}

func TestCLIVerify(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "a.txt"), "alpha")
	testfs.WriteFile(t, filepath.Join(dir, "sub", "b.txt"), "bravo")
	url := "s3://" + b + "/v"
	wantCode(t, s3sync(t, "reconcile", ep, dir, url), 0)

	r := s3sync(t, "verify", ep, dir, url)
	wantCode(t, r, 0)
	wantLines(t, r)
	wantSummary(t, r, "verify: identical: 2 checked, 0 differ, 0 only in SRC, 0 only in DST, 0 not checkable")

	// One byte changed, same size and mtime: reconcile misses it, verify
	// does not.
	sameSizeSameMtime(t, filepath.Join(dir, "sub", "b.txt"))
	testfs.WriteFile(t, filepath.Join(dir, "new.txt"), "new")
	srv.Put(t, b, "v/extra.txt", "extra", nil)
	srv.Put(t, b, "v/a.txt", "alpha", nil) // as another tool would: no mtime
	r = s3sync(t, "reconcile", ep, "--exclude=*", dir, url)
	wantCode(t, r, 0)
	r = s3sync(t, "verify", ep, dir, url)
	wantCode(t, r, 1)
	wantLines(t, r,
		"differs: "+dir+"/sub/b.txt "+url+"/sub/b.txt: content differs",
		"only in SRC: "+dir+"/new.txt",
		"only in DST: "+url+"/extra.txt")
	wantSummary(t, r, "verify: DIFFERENT: 2 checked, 1 differ, 1 only in SRC, 1 only in DST, 0 not checkable; 1 object without x-amz-meta-mtime")

	// --json: one object per line, the summary last; S3 as SRC.
	r = s3sync(t, "verify", ep, "--json", url, dir)
	wantCode(t, r, 1)
	if r.stderr != "" {
		t.Errorf("--json wrote to stderr\n%s", r)
	}
	fs, sum := jsonLines(t, r)
	want := []jsonFinding{
		{Kind: "only_src", Path: "extra.txt", Src: url + "/extra.txt"},
		{Kind: "only_dst", Path: "new.txt", Dst: dir + "/new.txt"},
		{Kind: "differs", Path: "sub/b.txt", Src: url + "/sub/b.txt", Dst: dir + "/sub/b.txt", Reasons: []string{"content differs"}},
	}
	if got, _ := json.Marshal(fs); string(got) != mustJSON(t, want) {
		t.Errorf("--json findings:\n got %s\nwant %s", got, mustJSON(t, want))
	}
	if sum.Identical || sum.Checked != 2 || sum.Differ != 1 || sum.OnlySrc != 1 || sum.OnlyDst != 1 || sum.Hashed != 2 {
		t.Errorf("--json summary: %+v", sum)
	}

	// Filters, as reconcile's.
	r = s3sync(t, "verify", ep, "--exclude=*", "--include=a.txt", dir, url)
	wantCode(t, r, 0)
	wantSummary(t, r, "identical: 1 checked")

	// Usage errors exit 2.
	for _, args := range [][]string{
		{"verify", dir},
		{"verify", filepath.Join(dir, "missing"), url},
		{"verify", dir, "gs://b/x"},
		{"verify", "--concurrency=0", dir, url},
	} {
		if r := s3sync(t, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r)
		}
	}
}

// A chmod after the upload: reconcile does not send the file again (as
// aws s3 sync would not), so only verify can say the restore would be wrong.
func TestCLIVerifyMode(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	for _, n := range []string{"a.sh", "b.txt"} {
		testfs.WriteFile(t, filepath.Join(dir, n), "content of "+n)
		if err := os.Chmod(filepath.Join(dir, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	url := "s3://" + b + "/m"
	wantCode(t, s3sync(t, "reconcile", ep, dir, url), 0)
	if err := os.Chmod(filepath.Join(dir, "a.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s3sync(t, "reconcile", ep, dir, url), 0)

	r := s3sync(t, "verify", ep, dir, url)
	wantCode(t, r, 1)
	wantLines(t, r, "metadata differs: "+dir+"/a.sh "+url+"/a.sh: mode 0755 != 0644")
	wantSummary(t, r, "verify: DIFFERENT: 2 checked, 0 differ, 0 only in SRC, 0 only in DST, 0 not checkable, 1 differ only in mode or owner")

	r = s3sync(t, "verify", ep, "--json", url, dir)
	wantCode(t, r, 1)
	fs, sum := jsonLines(t, r)
	want := []jsonFinding{{Kind: "metadata_differs", Path: "a.sh", Src: url + "/a.sh", Dst: dir + "/a.sh", Reasons: []string{"mode 0644 != 0755"}}}
	if got, _ := json.Marshal(fs); string(got) != mustJSON(t, want) {
		t.Errorf("--json findings:\n got %s\nwant %s", got, mustJSON(t, want))
	}
	if sum.Identical || sum.Checked != 2 || sum.Differ != 0 || sum.MetaDiffer != 1 {
		t.Errorf("--json summary: %+v", sum)
	}

	// --owner: the objects carry this process's uid and gid.
	r = s3sync(t, "verify", ep, "--owner", "--exclude=a.sh", dir, url)
	wantCode(t, r, 0)
	wantSummary(t, r, "identical: 1 checked")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The checksum cache lives in the mount's state dir, found by default for
// the directory and remote; a mount holding it means no cache, said once.
func TestCLIVerifyChecksumCache(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		testfs.WriteFile(t, filepath.Join(dir, n+".txt"), "content of "+n)
	}
	url := "s3://" + b + "/c"
	wantCode(t, s3sync(t, "reconcile", ep, dir, url), 0)

	stateHome := t.TempDir()
	env := []string{"XDG_STATE_HOME=" + stateHome}
	t.Setenv("XDG_STATE_HOME", stateHome) // for defaultStateDir here
	stateDir := defaultStateDir(dir, "s3://"+b+"/c/")
	made, err := state.OpenSums(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	made.Close()

	verifyJSON := func() jsonSummary {
		t.Helper()
		r := s3syncEnv(t, env, "verify", ep, "--json", dir, url)
		wantCode(t, r, 0)
		_, sum := jsonLines(t, r)
		return sum
	}
	// Checksums of files changed within cache.RacyWindow of their reading
	// are not kept: a write in the same clock tick could go unseen.
	time.Sleep(cache.RacyWindow + 100*time.Millisecond)
	if sum := verifyJSON(); sum.Hashed != 3 || sum.HashCached != 0 {
		t.Errorf("first run: %+v", sum)
	}
	if sum := verifyJSON(); sum.Hashed != 0 || sum.HashCached != 3 {
		t.Errorf("second run, from the cache: %+v", sum)
	}
	// The entry is in the state database, under the file's path.
	db, err := bbolt.Open(filepath.Join(stateDir, state.DBName), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error {
		if bk := tx.Bucket([]byte("sums")); bk == nil || bk.Get([]byte("b.txt")) == nil {
			t.Error("no sums entry for b.txt in the state database")
		}
		return nil
	})
	db.Close()
	// A new ctime invalidates the entry.
	if err := os.Chmod(filepath.Join(dir, "b.txt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sum := verifyJSON(); sum.Hashed != 1 || sum.HashCached != 2 {
		t.Errorf("after chmod: %+v", sum)
	}

	// A running mount holds the database: verify goes on without it.
	held, err := state.Open(stateDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r := s3syncEnv(t, env, "verify", ep, dir, url)
	wantCode(t, r, 0)
	if lines := r.errLines(); len(lines) != 2 || !strings.Contains(lines[0], "in use") || !strings.Contains(lines[1], "identical") {
		t.Errorf("with the state db held:\n%s", r)
	}
}

func TestCLIReconcileChecksum(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "a.txt"), "alpha")
	testfs.WriteFile(t, filepath.Join(dir, "b.txt"), "bravo")
	url := "s3://" + b + "/k"
	wantCode(t, s3sync(t, "reconcile", ep, dir, url), 0)

	sameSizeSameMtime(t, filepath.Join(dir, "a.txt"))
	r := s3sync(t, "reconcile", ep, dir, url)
	wantCode(t, r, 0)
	wantLines(t, r)
	r = s3sync(t, "reconcile", ep, "--checksum", dir, url)
	wantCode(t, r, 0)
	wantLines(t, r, "upload: "+dir+"/a.txt to "+url+"/a.txt")
	if got, _ := srv.Get(t, b, "k/a.txt"); got != "Alpha" {
		t.Errorf("k/a.txt holds %q", got)
	}
	wantCode(t, s3sync(t, "verify", ep, dir, url), 0)

	// Newer, same content: not sent.
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "b.txt"), later, later)
	r = s3sync(t, "reconcile", ep, "--checksum", dir, url)
	wantCode(t, r, 0)
	wantLines(t, r)

	r = s3sync(t, "reconcile", ep, "--checksum", "--size-only", dir, url)
	wantCode(t, r, 2)
}
