package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
)

// TestChaos is issue 7's whole-system test: a seeded random workload through
// the mount (writes, appends, truncates, renames of files and directories,
// deletes, editor saves, rename-then-rewrite; and, for issue 8, chmod,
// symlinks made, retargeted, renamed and removed, files replaced by links
// and back, empty directories made, emptied and removed), with the mount
// talking to the server through a proxy that answers 503, drops connections
// and delays requests so they overtake each other, and with kill -9 of the
// mount at random points (then a restart). Afterwards, with the faults off
// and the journal drained, the bucket must equal WORKDIR exactly: content,
// mtimes, modes and owners, links as .rclonelink objects, empty directories
// as markers (bucketEqualsWorkdir, and s3sync verify --links --owner).
//
// S3SYNC_CHAOS_SEEDS (default 3) seeds 1..N run; S3SYNC_CHAOS_SEED=N runs
// only seed N (to replay a failure); S3SYNC_CHAOS_OPS (default 150) ops each.
func TestChaos(t *testing.T) {
	requireFUSE(t)
	ops := envInt(t, "S3SYNC_CHAOS_OPS", 150)
	var seeds []uint64
	if s := os.Getenv("S3SYNC_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("S3SYNC_CHAOS_SEED=%q: %v", s, err)
		}
		seeds = []uint64{n}
	} else {
		for i := range envInt(t, "S3SYNC_CHAOS_SEEDS", 3) {
			seeds = append(seeds, uint64(i+1))
		}
	}
	var failed []string
	for _, seed := range seeds {
		if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { chaosRun(t, seed, ops) }) {
			failed = append(failed, fmt.Sprint(seed))
		}
	}
	if len(failed) > 0 {
		t.Logf("replay with: S3SYNC_CHAOS_SEED=N S3SYNC_CHAOS_OPS=%d go test ./internal/e2e/ -run TestChaos -count=1 -v   (failed seeds: %s)",
			ops, strings.Join(failed, " "))
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

// chaosFaults are the rules during the workload. Copies are always held
// 100-500 ms, so that a rename's server-side copy runs after what follows
// the rename (the source rewritten) has reached the server.
func chaosFaults() []faultproxy.Rule {
	notGet := func(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }
	return []faultproxy.Rule{
		{Kind: faultproxy.Delay, Match: faultproxy.IsCopy, MinDelay: 100 * time.Millisecond, MaxDelay: 500 * time.Millisecond},
		{Kind: faultproxy.Delay, Prob: 0.3, MaxDelay: 200 * time.Millisecond},
		{Kind: faultproxy.Error503, Prob: 0.05},
		{Kind: faultproxy.Error503, Prob: 0.02, Code: "ServiceUnavailable"},
		{Kind: faultproxy.Error503After, Prob: 0.03, Match: notGet},
		{Kind: faultproxy.DropBefore, Prob: 0.03},
		{Kind: faultproxy.DropAfter, Prob: 0.03},
	}
}

func chaosRun(t *testing.T, seed uint64, ops int) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	proxy, err := faultproxy.New(srv.Endpoint, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	m := newMountVia(t, bucket, proxy.URL(), "--delete")
	proxy.SetRules(chaosFaults()...)
	m.start()
	start := time.Now()

	w := newWorkload(t, seed, m.mountpoint)
	kills := 0
	for i := range ops {
		tail := i >= ops-ops/10
		w.step(i, tail)
		if w.rng.IntN(ops) < 2 { // about two kills per run
			// Let the syncer get going on what was just done, then kill.
			time.Sleep(time.Duration(w.rng.IntN(500)) * time.Millisecond)
			m.kill9()
			kills++
			if w.rng.IntN(2) == 0 {
				// Changes while unmounted: the start-up scan must find
				// them (modes, links and empty directories too).
				w.logf("kill -9; while unmounted, in WORKDIR:")
				w.mp = m.workdir
				for range 1 + w.rng.IntN(3) {
					w.step(i, tail)
				}
				w.mp = m.mountpoint
				w.logf("restart")
			} else {
				w.logf("kill -9 and restart")
			}
			m.start()
		} else if w.rng.IntN(4) == 0 {
			time.Sleep(time.Duration(w.rng.IntN(300)) * time.Millisecond)
		}
	}
	workTime := time.Since(start)

	proxy.SetRules()
	settled := false
	t.Cleanup(func() {
		if !settled { // waitSettled failed the test: say what led there
			t.Logf("seed %d: the mount did not settle; workload:\n  %s", seed, strings.Join(w.log, "\n  "))
		}
	})
	r := m.waitSettled(5 * time.Minute)
	settled = true
	drainTime := time.Since(start) - workTime
	m.stop()
	t.Logf("seed %d: %d ops, %d kills, %d files, %d links, %d directories, %d hard-linked names, %d special files; workload %v, drain %v; proxy: %s",
		seed, ops, kills, len(w.files), len(w.links), len(w.dirs), len(w.ino), len(w.specials), workTime.Round(time.Millisecond), drainTime.Round(time.Millisecond), proxy.Counts())

	var diffs []string
	for _, f := range r.Failed {
		diffs = append(diffs, fmt.Sprintf("%s: in the failed list: %s", f.Path, f.Error))
	}
	diffs = append(diffs, w.skippedDiffs(m)...)
	diffs = append(diffs, w.modelDiffs(m.workdir)...)
	diffs = append(diffs, bucketEqualsWorkdir(t, srv, m.url, m.workdir)...)
	if code, out := verifyCommand(t, srv.Endpoint, m.workdir, m.url); code != 0 {
		diffs = append(diffs, fmt.Sprintf("s3sync verify exited %d:\n%s", code, out))
	}
	if len(diffs) == 0 {
		diffs = restoreDiffs(t, srv.Endpoint, m.url, m.workdir)
	}
	if len(diffs) > 0 {
		t.Errorf("seed %d (replay: S3SYNC_CHAOS_SEED=%d S3SYNC_CHAOS_OPS=%d): bucket does not equal WORKDIR, %d differences:\n  %s\nworkload:\n  %s\nrequests on the differing keys:\n  %s",
			seed, seed, ops, len(diffs), strings.Join(diffs, "\n  "), strings.Join(w.log, "\n  "),
			strings.Join(requestsFor(proxy.Log(), diffs), "\n  "))
	}
}

// requestsFor lists the proxy's log entries for keys named in diffs and,
// transitively, for the sources they were copied from.
func requestsFor(log []faultproxy.Entry, diffs []string) []string {
	key := func(p string) string { // "/BUCKET/data/k" or "BUCKET/data/k" -> "k"
		if i := strings.Index(p, "/data/"); i >= 0 {
			return p[i+len("/data/"):]
		}
		return ""
	}
	keys := map[string]bool{}
	for _, d := range diffs {
		if k, _, ok := strings.Cut(d, ": "); ok {
			keys[k] = true
		}
	}
	for grown := true; grown; {
		grown = false
		for _, e := range log {
			if src := key("/" + e.CopySource); keys[key(e.Path)] && src != "" && !keys[src] {
				keys[src] = true
				grown = true
			}
		}
	}
	var out []string
	for _, e := range log {
		if !keys[key(e.Path)] {
			continue
		}
		copied := ""
		if e.CopySource != "" {
			copied = " copy from " + key("/"+e.CopySource)
		}
		if len(e.Conditions) > 0 {
			copied += " [" + strings.Join(e.Conditions, ", ") + "]"
		}
		server := "not forwarded"
		if e.Upstream != 0 {
			server = fmt.Sprint("server ", e.Upstream)
		} else if e.Forwarded {
			server = "forwarded, server's answer not seen"
		}
		out = append(out, fmt.Sprintf("%s +%v %s %s?%s%s -> %d (%s) faults %v",
			e.Start.Format("15:04:05.000"), e.End.Sub(e.Start).Round(time.Millisecond), e.Method, key(e.Path), e.Query, copied, e.Status, server, e.Faults))
	}
	return out
}

// step does one random op; in the tail (the last tenth of the run) only
// ops that leave file content alone, so that their effect is what the
// final check sees: a chmod there must reach the bucket by itself (a
// metadata-only copy), not ride along with a later upload of the file.
func (w *workload) step(i int, tail bool) {
	w.op = i
	type op struct {
		weight int
		do     func() bool // false: not applicable now
	}
	table := []op{
		{14, w.create},
		{10, w.overwrite},
		{8, w.appendTo},
		{5, w.truncate},
		{8, w.renameFile},
		{14, w.renameThenRewrite},
		{4, w.renameOverExisting},
		{8, w.editorSave},
		{8, w.rewriteWhileUploading},
		{6, w.deleteFile},
		{6, w.mkdir},
		{4, w.renameDir},
		{2, w.removeDir},
		{1, w.bigFile},
		{8, w.chmod},
		{6, w.symlink},
		{3, w.retarget},
		{3, w.removeLink},
		{3, w.fileToLink},
		{2, w.linkToFile},
		{3, w.rmdirEmpty},
		{4, w.moveOutLast},
		{2, w.renameLink},
		{3, w.swapType},
		{3, w.hardLink},
		{1, w.hardLinkSymlink},
		{2, w.mkfifo},
		{1, w.mknodDevice},
		{1, w.removeSpecial},
		{1, w.renameSpecial},
		{3, w.concurrentWriters},
		{3, w.mmapWrite},
	}
	if tail {
		table = []op{{8, w.chmod}, {3, w.retarget}, {2, w.removeLink}, {2, w.symlink}, {2, w.rmdirEmpty}, {3, w.moveOutLast}, {2, w.deleteFile}, {1, w.mkdir}}
	}
	total := 0
	for _, o := range table {
		total += o.weight
	}
	for {
		n := w.rng.IntN(total)
		for _, o := range table {
			if n -= o.weight; n < 0 {
				if o.do() {
					return
				}
				break
			}
		}
	}
}
