package mirror_test

import (
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
)

func TestConflictName(t *testing.T) {
	at := time.Date(2026, 11, 26, 19, 30, 0, 0, time.UTC)
	cases := []struct{ rel, want string }{
		{"report.pdf", "report.conflict-laptop-20261126-193000.pdf"},
		{"Makefile", "Makefile.conflict-laptop-20261126-193000"},
		{"dir/.bashrc", "dir/.bashrc.conflict-laptop-20261126-193000"},
		{"a.b/archive.tar.gz", "a.b/archive.tar.conflict-laptop-20261126-193000.gz"},
	}
	for _, c := range cases {
		got := mirror.ConflictName(c.rel, "laptop", at.In(time.FixedZone("x", 3600)))
		if got != c.want {
			t.Errorf("ConflictName(%q) = %q, want %q", c.rel, got, c.want)
		}
		if !mirror.IsConflictCopy(got) || mirror.IsConflictCopy(c.rel) {
			t.Errorf("IsConflictCopy wrong for %q / %q", got, c.rel)
		}
	}
}

// twoMachines is two drains, each with its own WORKDIR and state, on one
// prefix: a laptop and a desktop mirroring the same folder.
func twoMachines(t *testing.T, opts mirror.DrainOptions) (a, b *drainEnv) {
	opts.Settle = 10 * time.Millisecond
	a = newDrainEnv(t, opts)
	b = newDrainOn(t, a.Env, opts, nil, nil)
	return a, b
}

func (d *drainEnv) put(t *testing.T, rel, body string) {
	t.Helper()
	testfs.WriteFile(t, d.workdir+"/"+rel, body)
	d.j.Changed(rel)
	d.waitIdle(t)
}

// conflictCopies are the conflict copies of the bucket, with their bodies.
func (d *drainEnv) conflictCopies(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k := range d.Srv.Objects(t, d.Bucket, "w/") {
		if mirror.IsConflictCopy(k) {
			out[k], _ = d.Srv.Get(t, d.Bucket, k)
		}
	}
	return out
}

func (d *drainEnv) conflicts(t *testing.T) map[string]cache.Conflict {
	t.Helper()
	out := map[string]cache.Conflict{}
	d.c.Conflicts(func(p string, cf cache.Conflict) error { out[p] = cf; return nil })
	return out
}

func body(t *testing.T, d *drainEnv, key string) string {
	t.Helper()
	b, _ := d.Srv.Get(t, d.Bucket, key)
	return b
}

// The story: A and B both hold f; B edits and syncs; A edits and
// syncs. B's version stays f, A's goes beside it as a conflict copy, the
// conflict is recorded on A; A's next edit refreshes the same copy and
// still leaves B's f alone.
func TestConflictKeepsBothVersions(t *testing.T) {
	a, b := twoMachines(t, mirror.DrainOptions{})
	a.put(t, "f.txt", "v1")
	// B has the same file (a restore, a copy): the same content is no
	// conflict, B just learns the object.
	b.put(t, "f.txt", "v1")
	if c := a.conflictCopies(t); len(c) != 0 {
		t.Fatalf("the same content on both sides made conflict copies %v", c)
	}
	b.put(t, "f.txt", "v2 from B")
	a.put(t, "f.txt", "v2 from A")

	if got := body(t, a, "w/f.txt"); got != "v2 from B" {
		t.Errorf("f.txt holds %q: B's newer version was overwritten", got)
	}
	copies := a.conflictCopies(t)
	if len(copies) != 1 {
		t.Fatalf("conflict copies %v, want one", copies)
	}
	var copyKey string
	for k, v := range copies {
		copyKey = k
		if v != "v2 from A" || !strings.HasPrefix(k, "w/f.conflict-") || !strings.HasSuffix(k, ".txt") {
			t.Errorf("conflict copy %s holds %q, want A's version as f.conflict-HOST-TIME.txt", k, v)
		}
	}
	cf, ok := a.conflicts(t)["f.txt"]
	if !ok || cf.Kind != cache.ConflictChanged || "w/"+cf.Copy != copyKey {
		t.Errorf("A's conflict record %+v (found %v), want the copy %s", cf, ok, copyKey)
	}

	a.put(t, "f.txt", "v3 from A")
	copies = a.conflictCopies(t)
	if len(copies) != 1 || copies[copyKey] != "v3 from A" {
		t.Errorf("after A's next edit conflict copies are %v, want %s refreshed with v3", copies, copyKey)
	}
	if got := body(t, a, "w/f.txt"); got != "v2 from B" {
		t.Errorf("f.txt holds %q after A's second edit, want B's", got)
	}
	if len(b.conflicts(t)) != 0 {
		t.Errorf("B recorded conflicts: %v", b.conflicts(t))
	}

	// A takes B's version in: the bucket holds what A holds, the conflict
	// closes, and A's next edit goes to f again.
	a.put(t, "f.txt", "v2 from B")
	if c := a.conflicts(t); len(c) != 0 {
		t.Errorf("conflicts after A took B's version: %v", c)
	}
	a.put(t, "f.txt", "v4 from A, merged")
	if got := body(t, a, "w/f.txt"); got != "v4 from A, merged" {
		t.Errorf("f.txt holds %q after the conflict closed, want A's merged edit", got)
	}
	if n := len(a.conflictCopies(t)); n != 1 {
		t.Errorf("%d conflict copies, want still the one", n)
	}

	// A removes its file: the conflict is over (without --delete the
	// object stays, as always).
	os.Remove(a.workdir + "/f.txt")
	a.j.Removed("f.txt", false)
	a.waitIdle(t)
	if c := a.conflicts(t); len(c) != 0 {
		t.Errorf("conflicts after the local file was removed: %v", c)
	}
}

// A file new on both sides with different content: the second to sync
// finds the name taken (If-None-Match) and keeps both. A link too.
func TestConflictNewOnBothSides(t *testing.T) {
	a, b := twoMachines(t, mirror.DrainOptions{})
	b.put(t, "g", "B's g")
	a.put(t, "g", "A's g")
	os.Symlink("target-b", b.workdir+"/l")
	b.j.Changed("l")
	b.waitIdle(t)
	os.Symlink("target-a", a.workdir+"/l")
	a.j.Changed("l")
	a.waitIdle(t)

	if got := body(t, a, "w/g"); got != "B's g" {
		t.Errorf("g holds %q, want B's", got)
	}
	if got := body(t, a, "w/l.rclonelink"); got != "target-b" {
		t.Errorf("l.rclonelink holds %q, want B's target", got)
	}
	var got []string
	for k, v := range a.conflictCopies(t) {
		got = append(got, strings.SplitN(k, ".conflict-", 2)[0]+"="+v)
		if strings.HasPrefix(k, "w/l.") && !strings.HasSuffix(k, ".rclonelink") {
			t.Errorf("a link's conflict copy %s is not a .rclonelink", k)
		}
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "w/g=A's g w/l=target-a" {
		t.Errorf("conflict copies %v, want A's g and A's link", got)
	}
	if n := len(a.conflicts(t)); n != 2 {
		t.Errorf("%d conflicts recorded, want 2", n)
	}
}

// --delete of a file another writer changed since: its version stays, and
// the conflict (deleted here, changed there) is recorded.
func TestConflictDeleteKeepsTheirs(t *testing.T) {
	a, b := twoMachines(t, mirror.DrainOptions{Delete: true})
	a.put(t, "f", "v1")
	b.put(t, "f", "v1")
	b.put(t, "f", "B's v2")
	os.Remove(a.workdir + "/f")
	a.j.Removed("f", false)
	a.waitIdle(t)
	if got := body(t, a, "w/f"); got != "B's v2" {
		t.Errorf("f holds %q after A's delete, want B's version kept", got)
	}
	if cf, ok := a.conflicts(t)["f"]; !ok || cf.Kind != cache.ConflictDeleted {
		t.Errorf("conflict record %+v (found %v), want deleted here, changed there", cf, ok)
	}
	if _, ok, _ := a.c.Get("f"); ok {
		t.Errorf("A's cache still has f")
	}
	// Unchanged elsewhere: deleted as before.
	a.put(t, "h", "only A")
	os.Remove(a.workdir + "/h")
	a.j.Removed("h", false)
	a.waitIdle(t)
	if _, ok := a.Srv.Objects(t, a.Bucket, "w/")["w/h"]; ok {
		t.Errorf("h was not deleted")
	}
}

// An upload the store applied while its answer was lost, then another
// edit: the next conditional upload is refused for this side's own write,
// which is no conflict.
func TestConflictNotForOwnInDoubtWrite(t *testing.T) {
	var fp *faultproxy.Proxy
	d := newDrainEnvWith(t, mirror.DrainOptions{Settle: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, nil, func(endpoint string) string {
		var err error
		if fp, err = faultproxy.New(endpoint, 1); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fp.Close)
		return fp.URL()
	})
	for _, known := range []bool{false, true} {
		name := "new"
		if known {
			name = "known"
			d.put(t, name, "v0")
		}
		fp.SetRules(faultproxy.Rule{Kind: faultproxy.DropAfter, Match: faultproxy.And(faultproxy.Method(http.MethodPut), faultproxy.KeyPrefix("w/"+name))})
		testfs.WriteFile(t, d.workdir+"/"+name, "v1")
		d.j.Changed(name)
		d.waitState(t, "the upload to fail", func(s mirror.State) bool { return strings.Contains(s.LastError, name) })
		if got := body(t, d, "w/"+name); got != "v1" {
			t.Fatalf("the store did not apply the upload (%q); the test proves nothing", got)
		}
		testfs.WriteFile(t, d.workdir+"/"+name, "v2, longer")
		d.j.Changed(name)
		fp.SetRules()
		d.waitIdle(t)
		if got := body(t, d, "w/"+name); got != "v2, longer" {
			t.Errorf("%s holds %q, want the last edit", name, got)
		}
	}
	if c := d.conflictCopies(t); len(c) != 0 {
		t.Errorf("false conflict copies of this side's own writes: %v", c)
	}
	if c := d.conflicts(t); len(c) != 0 {
		t.Errorf("false conflicts: %v", c)
	}
}

// With one writer, conditions cost nothing but headers: every upload
// carries one, and no request is added.
func TestConditionalUploadsOneWriterCost(t *testing.T) {
	var fp *faultproxy.Proxy
	d := newDrainEnvWith(t, mirror.DrainOptions{Settle: 10 * time.Millisecond, Delete: true}, nil, func(endpoint string) string {
		var err error
		if fp, err = faultproxy.New(endpoint, 1); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fp.Close)
		return fp.URL()
	})
	for i := range 5 {
		testfs.WriteFile(t, d.workdir+"/f"+string(rune('0'+i)), "first")
		d.j.Changed("f" + string(rune('0'+i)))
	}
	d.waitIdle(t)
	for i := range 5 {
		testfs.WriteFile(t, d.workdir+"/f"+string(rune('0'+i)), "second")
		d.j.Changed("f" + string(rune('0'+i)))
	}
	d.waitIdle(t)
	os.Remove(d.workdir + "/f0")
	d.j.Removed("f0", false)
	d.waitIdle(t)
	var puts, other int
	for _, e := range fp.Log() {
		switch {
		case e.Method == http.MethodPut:
			puts++
			if len(e.Conditions) != 1 {
				t.Errorf("PUT %s carried conditions %v, want one", e.Path, e.Conditions)
			}
		case e.Method == http.MethodDelete:
			other++
		default:
			t.Errorf("unexpected request %s %s?%s", e.Method, e.Path, e.Query)
		}
	}
	t.Logf("%d puts %d deletes of %d requests", puts, other, len(fp.Log()))
	if puts != 10 || other != 1 {
		t.Errorf("%d PUTs and %d deletes, want 10 and 1", puts, other)
	}
}

// A removal the cache cannot vouch for (this side's upload of f may have
// landed: its answer never came) deletes f only if f holds this side's
// own write. Here another machine's f landed instead; it stays.
func TestDoubtRemovalSparesOtherWriter(t *testing.T) {
	a, proxy := newDrainBehindFaults(t, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	b := newDrainOn(t, a.Env, mirror.DrainOptions{Delete: true, Settle: 10 * time.Millisecond}, nil, nil)

	// A's uploads of f never answer (nor land): A is in doubt about f.
	proxy.SetRules(faultproxy.Rule{Kind: faultproxy.DropBefore, Match: faultproxy.KeyPrefix("w/f")})
	testfs.WriteFile(t, a.workdir+"/f", "a's")
	a.j.Changed("f")
	a.waitState(t, "A's upload of f to fail", func(s mirror.State) bool { return s.LastError != "" })

	b.put(t, "f", "b's version")
	os.Remove(a.workdir + "/f")
	a.j.Removed("f", false)
	proxy.SetRules()
	a.waitIdle(t)
	if got := body(t, b, "w/f"); got != "b's version" {
		t.Errorf("after A removed its unsent f, the bucket's f holds %q, want B's version kept", got)
	}
}
