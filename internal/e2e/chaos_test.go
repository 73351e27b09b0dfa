package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
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

// workload makes random changes through the mount and keeps a model of the
// tree they should leave, to cross-check WORKDIR.
type workload struct {
	t     *testing.T
	rng   *rand.Rand
	mp    string
	files map[string][]byte // rel path -> content
	dirs  map[string]bool   // rel path of every directory made
	log   []string
	op    int

	modes map[string]os.FileMode // permission bits of each file in files
	links map[string]string      // rel path of each symlink -> its target
	// newMode is what a file created with 0644 gets (the umask applies).
	newMode os.FileMode
	// outside is a folder outside WORKDIR holding a secret, for links to
	// point at: nothing of it may reach the bucket.
	outside string

	// ino groups the names of one file or symlink (hard links): names with
	// the same number share content and mode (chaos_ops_test.go).
	ino     map[string]int
	nextIno int
	// specials are FIFOs and device nodes (rel path -> kind): absent from
	// the bucket, listed by status as skipped.
	specials map[string]string
}

func newWorkload(t *testing.T, seed uint64, mountpoint string) *workload {
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "id_rsa"), []byte("SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &workload{t: t, rng: rand.New(rand.NewPCG(seed, 0xc4a05)), mp: mountpoint,
		files: map[string][]byte{}, dirs: map[string]bool{},
		modes: map[string]os.FileMode{}, links: map[string]string{},
		ino: map[string]int{}, specials: map[string]string{},
		newMode: 0o644 &^ os.FileMode(umask), outside: outside}
}

func (w *workload) logf(format string, args ...any) {
	w.log = append(w.log, time.Now().Format("15:04:05.000")+fmt.Sprintf(" %3d ", w.op)+fmt.Sprintf(format, args...))
}

func (w *workload) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatalf("workload op %d: %v\nworkload so far:\n  %s", w.op, err, strings.Join(w.log, "\n  "))
	}
}

func (w *workload) abs(rel string) string { return filepath.Join(w.mp, filepath.FromSlash(rel)) }

// content is n random bytes, with a readable head naming the op.
func (w *workload) content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + w.rng.IntN(26))
	}
	copy(b, fmt.Sprintf("op%d ", w.op))
	return b
}

func (w *workload) size() int {
	switch r := w.rng.IntN(100); {
	case r < 10:
		return 0
	case r < 80:
		return 1 + w.rng.IntN(16<<10)
	default:
		return 64<<10 + w.rng.IntN(1<<20) // big enough to be read while held
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (w *workload) pickFile() (string, bool) {
	if len(w.files) == 0 {
		return "", false
	}
	ks := sortedKeys(w.files)
	return ks[w.rng.IntN(len(ks))], true
}

// pickDir is "" (the root) or a directory.
func (w *workload) pickDir() string {
	ks := append([]string{""}, sortedKeys(w.dirs)...)
	return ks[w.rng.IntN(len(ks))]
}

func (w *workload) taken(rel string) bool {
	_, f := w.files[rel]
	_, l := w.links[rel]
	_, s := w.specials[rel]
	return f || l || s || w.dirs[rel]
}

// freeName is a name not in use in dir, starting with prefix ("f" files,
// "d" directories, so the two never collide in the model by accident).
func (w *workload) freeName(dir, prefix string) string {
	for i := 0; ; i++ { // a small pool, so names are reused; it grows if full
		name := path.Join(dir, fmt.Sprintf("%s%d", prefix, w.rng.IntN(40+i)))
		if !w.taken(name) {
			return name
		}
	}
}

// write writes b to rel, a file or a new name (never a link: that would
// write through it); a file keeps its mode, a new one gets newMode.
func (w *workload) write(rel string, b []byte) {
	w.must(os.WriteFile(w.abs(rel), b, 0o644))
	if _, ok := w.files[rel]; !ok {
		w.modes[rel] = w.newMode
	}
	w.setContent(rel, b)
}

// forget drops a file or link from the model.
func (w *workload) forget(rel string) {
	delete(w.files, rel)
	delete(w.modes, rel)
	delete(w.links, rel)
	delete(w.ino, rel)
	delete(w.specials, rel)
}

func (w *workload) rename(from, to string) {
	w.must(os.Rename(w.abs(from), w.abs(to)))
	g, linked := w.ino[from]
	if linked && w.ino[to] == g {
		return // two names of one file: rename(2) does nothing
	}
	if b, ok := w.files[from]; ok {
		m := w.modes[from]
		w.forget(from)
		w.forget(to)
		w.files[to], w.modes[to] = b, m
		if linked {
			w.ino[to] = g
		}
		return
	}
	if target, ok := w.links[from]; ok {
		w.forget(from)
		w.forget(to)
		w.links[to] = target
		if linked {
			w.ino[to] = g
		}
		return
	}
	if kind, ok := w.specials[from]; ok {
		w.forget(from)
		w.forget(to)
		w.specials[to] = kind
		return
	}
	w.moveNames(from, to)
	for _, k := range sortedKeys(w.files) {
		if strings.HasPrefix(k, from+"/") {
			nk := to + strings.TrimPrefix(k, from)
			w.files[nk], w.modes[nk] = w.files[k], w.modes[k]
			delete(w.files, k)
			delete(w.modes, k)
		}
	}
	for _, k := range sortedKeys(w.links) {
		if strings.HasPrefix(k, from+"/") {
			w.links[to+strings.TrimPrefix(k, from)] = w.links[k]
			delete(w.links, k)
		}
	}
	for _, k := range sortedKeys(w.dirs) {
		if k == from || strings.HasPrefix(k, from+"/") {
			w.dirs[to+strings.TrimPrefix(k, from)] = true
			delete(w.dirs, k)
		}
	}
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

func (w *workload) create() bool {
	rel := w.freeName(w.pickDir(), "f")
	n := w.size()
	w.logf("create %s (%d bytes)", rel, n)
	w.write(rel, w.content(n))
	return true
}

func (w *workload) overwrite() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	n := w.size()
	w.logf("overwrite %s (%d bytes)", rel, n)
	w.write(rel, w.content(n))
	return true
}

func (w *workload) appendTo() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	add := w.content(1 + w.rng.IntN(8<<10))
	w.logf("append %d bytes to %s", len(add), rel)
	f, err := os.OpenFile(w.abs(rel), os.O_WRONLY|os.O_APPEND, 0)
	w.must(err)
	_, err = f.Write(add)
	w.must(err)
	w.must(f.Close())
	w.setContent(rel, append(append([]byte(nil), w.files[rel]...), add...))
	return true
}

func (w *workload) truncate() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	old := w.files[rel]
	n := w.rng.IntN(len(old) + 4096)
	w.logf("truncate %s to %d bytes (was %d)", rel, n, len(old))
	w.must(os.Truncate(w.abs(rel), int64(n)))
	b := make([]byte, n)
	copy(b, old)
	w.setContent(rel, b)
	return true
}

func (w *workload) renameFile() bool {
	from, ok := w.pickFile()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "f")
	w.logf("rename %s -> %s", from, to)
	w.rename(from, to)
	return true
}

// renameThenRewrite is mv f g followed at once by a new f (also vim's
// save: rename to a backup, write the new file, sometimes remove the
// backup).
func (w *workload) renameThenRewrite() bool {
	from, ok := w.pickFile()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "f")
	n := w.size()
	w.logf("rename %s -> %s, then write %s (%d bytes)", from, to, from, n)
	w.rename(from, to)
	w.write(from, w.content(n))
	if w.rng.IntN(3) == 0 {
		w.logf("  remove %s", to)
		w.must(os.Remove(w.abs(to)))
		w.forget(to)
	}
	return true
}

func (w *workload) renameOverExisting() bool {
	if len(w.files) < 2 {
		return false
	}
	from, _ := w.pickFile()
	to, _ := w.pickFile()
	if from == to {
		return false
	}
	w.logf("rename %s over %s", from, to)
	w.rename(from, to)
	return true
}

// editorSave writes a temporary file and renames it over the original.
func (w *workload) editorSave() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	tmp := path.Join(path.Dir(rel), "."+path.Base(rel)+".tmp")
	if path.Dir(rel) == "." {
		tmp = "." + rel + ".tmp"
	}
	n := w.size()
	w.logf("editor save %s via %s (%d bytes)", rel, tmp, n)
	w.write(tmp, w.content(n))
	w.rename(tmp, rel)
	return true
}

// rewriteWhileUploading writes a file, waits about the settle delay so
// the syncer starts sending it, then rewrites part of it in place: the
// object must never hold a mix of the two.
func (w *workload) rewriteWhileUploading() bool {
	rel, ok := w.pickFile()
	if !ok {
		rel = w.freeName(w.pickDir(), "f")
	}
	n := 256<<10 + w.rng.IntN(2<<20)
	if w.rng.IntN(4) == 0 {
		n = 9<<20 + w.rng.IntN(1<<20) // multipart: parts read at different times
	}
	pause := time.Duration(150+w.rng.IntN(300)) * time.Millisecond
	w.logf("write %s (%d bytes), after %v rewrite its middle in place", rel, n, pause)
	w.write(rel, w.content(n))
	time.Sleep(pause)
	f, err := os.OpenFile(w.abs(rel), os.O_WRONLY, 0)
	w.must(err)
	patch := bytes.Repeat([]byte{'#'}, 64<<10)
	off := n / 3
	_, err = f.WriteAt(patch, int64(off))
	w.must(err)
	w.must(f.Close())
	b := append([]byte(nil), w.files[rel]...)
	copy(b[off:], patch)
	w.setContent(rel, b)
	return true
}

func (w *workload) deleteFile() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	w.logf("delete %s", rel)
	w.must(os.Remove(w.abs(rel)))
	w.forget(rel)
	return true
}

func (w *workload) mkdir() bool {
	parent := w.pickDir()
	if strings.Count(parent, "/") >= 2 {
		return false
	}
	rel := w.freeName(parent, "d")
	switch w.rng.IntN(3) {
	case 0:
		w.logf("mkdir %s", rel)
	case 1:
		// Not empty by the time the drain looks: no marker until a
		// removal or a move leaves it empty.
		f := w.freeName(rel, "f")
		w.logf("mkdir %s, create %s", rel, f)
		w.must(os.Mkdir(w.abs(rel), 0o755))
		w.dirs[rel] = true
		w.write(f, w.content(w.size()))
		return true
	case 2:
		sub := w.freeName(rel, "d")
		w.logf("mkdir -p %s", sub)
		w.must(os.Mkdir(w.abs(rel), 0o755))
		w.dirs[rel] = true
		rel = sub
	}
	w.must(os.Mkdir(w.abs(rel), 0o755))
	w.dirs[rel] = true
	return true
}

func (w *workload) renameDir() bool {
	from := w.pickDir()
	if from == "" {
		return false
	}
	parent := w.pickDir()
	if parent == from || strings.HasPrefix(parent, from+"/") {
		parent = path.Dir(from)
		if parent == "." {
			parent = ""
		}
	}
	to := w.freeName(parent, "d")
	w.logf("rename directory %s -> %s", from, to)
	w.rename(from, to)
	return true
}

func (w *workload) removeDir() bool {
	rel := w.pickDir()
	if rel == "" {
		return false
	}
	w.logf("rm -r %s", rel)
	w.removeTree(rel)
	return true
}

func (w *workload) removeTree(rel string) {
	w.must(os.RemoveAll(w.abs(rel)))
	for _, k := range append(append(sortedKeys(w.files), sortedKeys(w.links)...), sortedKeys(w.specials)...) {
		if strings.HasPrefix(k, rel+"/") {
			w.forget(k)
		}
	}
	for _, k := range sortedKeys(w.dirs) {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(w.dirs, k)
		}
	}
}

// bigFile goes over the multipart threshold (8 MiB).
func (w *workload) bigFile() bool {
	rel, ok := w.pickFile()
	if !ok || w.rng.IntN(2) == 0 {
		rel = w.freeName(w.pickDir(), "f")
	}
	n := 9<<20 + w.rng.IntN(1<<20)
	w.logf("write big %s (%d bytes)", rel, n)
	b := bytes.Repeat(w.content(4096), n/4096+1)[:n]
	copy(b, fmt.Sprintf("op%d ", w.op))
	w.write(rel, b)
	return true
}

// What a restore must give back besides content: modes, symlinks (stored
// as NAME.rclonelink, never followed) and empty directories (dir/ markers).

var chaosModes = []os.FileMode{0o755, 0o644, 0o600}

func (w *workload) chmod() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	m := chaosModes[w.rng.IntN(len(chaosModes))]
	if m == w.modes[rel] {
		m = chaosModes[(slices.Index(chaosModes, m)+1)%len(chaosModes)]
	}
	w.logf("chmod %04o %s (was %04o)", m, rel, w.modes[rel])
	w.must(os.Chmod(w.abs(rel), m))
	w.setMode(rel, m)
	return true
}

func (w *workload) pickLink() (string, bool) {
	if len(w.links) == 0 {
		return "", false
	}
	ks := sortedKeys(w.links)
	return ks[w.rng.IntN(len(ks))], true
}

// linkTarget is a target for a link at rel, and what it points to.
func (w *workload) linkTarget(rel string) (target, what string) {
	relTo := func(to string) string {
		r, _ := filepath.Rel(filepath.Join("/w", path.Dir(rel)), filepath.Join("/w", to))
		return r
	}
	switch w.rng.IntN(6) {
	case 0:
		if f, ok := w.pickFile(); ok {
			return relTo(f), "a file"
		}
	case 1:
		return relTo(w.pickDir()), "a directory"
	case 2:
		if f, ok := w.pickFile(); ok {
			return w.abs(f), "a file, by its absolute path"
		}
	case 3:
		return w.outside, "a directory outside WORKDIR"
	case 4:
		return filepath.Join(w.outside, "id_rsa"), "a secret outside WORKDIR"
	}
	return fmt.Sprintf("../nowhere/op%d", w.op), "nothing"
}

// tempName is a name beside rel for a new entry renamed over rel.
func tempName(rel, suffix string) string {
	return path.Join(path.Dir(rel), "."+path.Base(rel)+suffix)
}

func (w *workload) symlink() bool {
	rel := w.freeName(w.pickDir(), "l")
	target, what := w.linkTarget(rel)
	w.logf("ln -s %s %s (%s)", target, rel, what)
	w.must(os.Symlink(target, w.abs(rel)))
	w.links[rel] = target
	return true
}

// replaceByLink makes rel (a file, a link) a link to target: removed and
// made again, or a new link renamed over it (ln -sfn's way).
func (w *workload) replaceByLink(rel, target string) {
	if w.rng.IntN(2) == 0 {
		w.logf("  rm %s, ln -s %s %s", rel, target, rel)
		w.must(os.Remove(w.abs(rel)))
		w.forget(rel)
		w.must(os.Symlink(target, w.abs(rel)))
		w.links[rel] = target
		return
	}
	tmp := tempName(rel, ".new")
	w.logf("  ln -s %s %s, mv %s over %s", target, tmp, tmp, rel)
	w.must(os.Symlink(target, w.abs(tmp)))
	w.links[tmp] = target
	w.rename(tmp, rel)
}

func (w *workload) retarget() bool {
	rel, ok := w.pickLink()
	if !ok {
		return false
	}
	target, what := w.linkTarget(rel)
	w.logf("retarget %s from %s to %s (%s)", rel, w.links[rel], target, what)
	w.replaceByLink(rel, target)
	return true
}

func (w *workload) removeLink() bool {
	rel, ok := w.pickLink()
	if !ok {
		return false
	}
	w.logf("rm link %s", rel)
	w.must(os.Remove(w.abs(rel)))
	w.forget(rel)
	return true
}

func (w *workload) renameLink() bool {
	from, ok := w.pickLink()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "l")
	w.logf("rename link %s -> %s", from, to)
	w.rename(from, to)
	return true
}

func (w *workload) fileToLink() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	target, what := w.linkTarget(rel)
	w.logf("replace file %s by a link to %s (%s)", rel, target, what)
	w.replaceByLink(rel, target)
	return true
}

func (w *workload) linkToFile() bool {
	rel, ok := w.pickLink()
	if !ok {
		return false
	}
	n := w.size()
	if w.rng.IntN(2) == 0 {
		w.logf("replace link %s by a file (%d bytes): rm, write", rel, n)
		w.must(os.Remove(w.abs(rel)))
		w.forget(rel)
		w.write(rel, w.content(n))
		return true
	}
	tmp := tempName(rel, ".tmp")
	w.logf("replace link %s by a file (%d bytes): write %s, mv over", rel, n, tmp)
	w.write(tmp, w.content(n))
	w.rename(tmp, rel)
	return true
}

// entries is how many files, links and directories dir holds directly.
func (w *workload) entries(dir string) int {
	n := 0
	for _, k := range append(append(append(sortedKeys(w.files), sortedKeys(w.links)...), sortedKeys(w.dirs)...), sortedKeys(w.specials)...) {
		if path.Dir(k) == dir {
			n++
		}
	}
	return n
}

func (w *workload) rmdirEmpty() bool {
	var empty []string
	for _, d := range sortedKeys(w.dirs) {
		if w.entries(d) == 0 {
			empty = append(empty, d)
		}
	}
	if len(empty) == 0 {
		return false
	}
	rel := empty[w.rng.IntN(len(empty))]
	w.logf("rmdir %s", rel)
	w.must(os.Remove(w.abs(rel)))
	delete(w.dirs, rel)
	return true
}

// moveOutLast moves a file out of its directory, the last entry of it
// where there is one, leaving the directory empty.
func (w *workload) moveOutLast() bool {
	var last, all []string
	for _, f := range sortedKeys(w.files) {
		if d := path.Dir(f); d != "." {
			all = append(all, f)
			if w.entries(d) == 1 {
				last = append(last, f)
			}
		}
	}
	if len(last) > 0 {
		all = last
	}
	if len(all) == 0 {
		return false
	}
	from := all[w.rng.IntN(len(all))]
	parent := path.Dir(path.Dir(from))
	if parent == "." {
		parent = ""
	}
	to := w.freeName(parent, "f")
	w.logf("move %s out to %s (%d entries left in %s)", from, to, w.entries(path.Dir(from))-1, path.Dir(from))
	w.rename(from, to)
	return true
}

// swapType gives a name another type: a file or link becomes an empty
// directory, a directory (and what it holds) a file or a link. The old
// name's object must go (NAME, NAME.rclonelink or the marker NAME/) and
// the new one's come.
func (w *workload) swapType() bool {
	switch w.rng.IntN(3) {
	case 0, 1:
		rel, ok := w.pickFile()
		if w.rng.IntN(2) == 0 || !ok {
			if rel, ok = w.pickLink(); !ok {
				return false
			}
		}
		w.logf("replace %s by an empty directory", rel)
		w.must(os.Remove(w.abs(rel)))
		w.forget(rel)
		w.must(os.Mkdir(w.abs(rel), 0o755))
		w.dirs[rel] = true
	default:
		rel := w.pickDir()
		if rel == "" {
			return false
		}
		w.logf("rm -r %s, then make it a file or a link", rel)
		w.removeTree(rel)
		if w.rng.IntN(2) == 0 {
			w.write(rel, w.content(w.size()))
		} else {
			target, what := w.linkTarget(rel)
			w.logf("  ln -s %s %s (%s)", target, rel, what)
			w.must(os.Symlink(target, w.abs(rel)))
			w.links[rel] = target
		}
	}
	return true
}

// modelDiffs cross-checks WORKDIR against the model: a difference here is
// a bug of the mount's file system (or of this test), not of the sync.
func (w *workload) modelDiffs(workdir string) []string {
	var diffs []string
	seen := map[string]bool{}
	filepath.Walk(workdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == workdir {
			return nil
		}
		rel, _ := filepath.Rel(workdir, p)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		switch {
		case info.IsDir():
			if !w.dirs[rel] {
				diffs = append(diffs, fmt.Sprintf("%s/: a directory in WORKDIR but not in the test's model", rel))
			}
		case info.Mode()&os.ModeSymlink != 0:
			want, ok := w.links[rel]
			if got, _ := os.Readlink(p); !ok || got != want {
				diffs = append(diffs, fmt.Sprintf("%s: WORKDIR has a link to %q, the model %q (in it: %v)", rel, got, want, ok))
			}
		case info.Mode().IsRegular():
			want, ok := w.files[rel]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: in WORKDIR but not in the test's model", rel))
				return nil
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
				diffs = append(diffs, fmt.Sprintf("%s: WORKDIR has %d bytes, the model %d (or other content)", rel, len(got), len(want)))
			}
			if got := info.Mode().Perm(); got != w.modes[rel] {
				diffs = append(diffs, fmt.Sprintf("%s: WORKDIR has mode %04o, the model %04o", rel, got, w.modes[rel]))
			}
		default:
			if kind, ok := w.specials[rel]; !ok || kind != specialKind(info.Mode()) {
				diffs = append(diffs, fmt.Sprintf("%s: a %v in WORKDIR, the model: %q", rel, info.Mode().Type(), kind))
			}
		}
		return nil
	})
	diffs = append(diffs, w.hardLinkDiffs(workdir)...)
	for _, rel := range append(append(append(sortedKeys(w.files), sortedKeys(w.links)...), sortedKeys(w.dirs)...), sortedKeys(w.specials)...) {
		if !seen[rel] {
			diffs = append(diffs, fmt.Sprintf("%s: in the model but not in WORKDIR", rel))
		}
	}
	return diffs
}

// A store answering 503 to everything when the mount starts (busy, or
// restarting) is no reason to refuse the mount: it comes up, keeps the
// changes, and sends them once the store answers again.
func TestMountStartsWhileStoreBusy(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	proxy, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	proxy.SetRules(faultproxy.Rule{Kind: faultproxy.Error503})
	m := newMountVia(t, bucket, proxy.URL(), "--delete")
	m.start()
	testfs.WriteFile(t, filepath.Join(m.mountpoint, "notes.txt"), "written while the store was busy")
	if st := m.status(); st.Pending == 0 {
		t.Fatalf("the change was not kept: %+v", st)
	}
	proxy.SetRules()
	m.waitSettled(2 * time.Minute)
	m.bucketMatchesWorkdir()
}
