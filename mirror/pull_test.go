package mirror_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/mirror"
)

// fakeMount plays the FUSE mount for the puller: which files are open, and
// which names it was told to invalidate.
type fakeMount struct {
	mu          sync.Mutex
	open        map[string]bool
	invalidated []string
}

func (m *fakeMount) IsOpen(rel string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.open[rel]
}

func (m *fakeMount) Invalidate(rel string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invalidated = append(m.invalidated, rel)
}

func (m *fakeMount) setOpen(rel string, open bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.open == nil {
		m.open = map[string]bool{}
	}
	m.open[rel] = open
}

var pullers sync.Map // *drainEnv -> *mirror.Puller

func (d *drainEnv) puller(m *fakeMount) *mirror.Puller {
	if p, ok := pullers.Load(d); ok {
		return p.(*mirror.Puller)
	}
	p := mirror.NewPuller(d.dr, d.j, mirror.PullOptions{Mount: m})
	pullers.Store(d, p)
	return p
}

// pull runs one round on d (with m as its mount, nil for none) and lets
// the drain finish what the round recorded.
func (d *drainEnv) pull(t *testing.T, m *fakeMount) mirror.PullStats {
	t.Helper()
	if m == nil {
		m = &fakeMount{}
	}
	st, err := d.puller(m).Pull(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d.waitIdle(t)
	return st
}

func (d *drainEnv) puts() int {
	d.p.Mu.Lock()
	defer d.p.Mu.Unlock()
	n := 0
	for _, c := range d.p.Nputs {
		n += c
	}
	return n
}

// local is WORKDIR's files (and links, as "->target") with their content,
// empty directories as "dir/".
func local(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+"->"+target)
		case info.IsDir():
			if names, _ := os.ReadDir(p); len(names) == 0 {
				out = append(out, rel+"/")
			}
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+"="+string(b))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, " ")
}

var conflictTime = regexp.MustCompile(`\.conflict-([A-Za-z0-9-]+?)-\d{8}-\d{6}`)

// masked hides the time in conflict copy names.
func masked(s string) string {
	return conflictTime.ReplaceAllString(s, ".conflict-$1-TIME")
}

// scanFinds is what a start-up scan of d's WORKDIR would send again.
func (d *drainEnv) scanFinds(t *testing.T) []string {
	t.Helper()
	var changed []string
	err := d.c.Scan(d.workdir, nil, func(p string) { changed = append(changed, p) }, func(p string) { changed = append(changed, "-"+p) })
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// B's new files, link, empty folder and edits show up at A; nothing is
// sent back, now or by the next start-up scan.
func TestPullBringsOthersChanges(t *testing.T) {
	a, b := twoMachines(t, mirror.DrainOptions{})
	b.put(t, "f.txt", "B's f")
	b.put(t, "dir/g", "B's g")
	synctest.Must(t, os.Symlink("f.txt", b.workdir+"/l"))
	b.j.Changed("l")
	synctest.Must(t, os.Mkdir(b.workdir+"/empty", 0o700))
	b.j.Changed("empty")
	b.waitIdle(t)

	m := &fakeMount{}
	st := a.pull(t, m)
	if got, want := local(t, a.workdir), "dir/g=B's g empty/ f.txt=B's f l->f.txt"; got != want {
		t.Errorf("A's WORKDIR after a pull:\n got %s\nwant %s", got, want)
	}
	if st.Downloaded != 4 {
		t.Errorf("pull stats %+v, want 4 downloaded", st)
	}
	if fi, err := os.Stat(a.workdir + "/empty"); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("empty folder at A: %v %v, want mode 0700 from its marker", fi, err)
	}
	if n := a.puts(); n != 0 {
		t.Errorf("A uploaded %d objects after pulling: pulled files echoed back", n)
	}
	if c := a.scanFinds(t); len(c) != 0 {
		t.Errorf("A's next start-up scan would send %v again", c)
	}
	if !strings.Contains(strings.Join(m.invalidated, " "), "f.txt") {
		t.Errorf("the mount was not told to forget f.txt (invalidated %v)", m.invalidated)
	}

	b.put(t, "f.txt", "B's f, edited")
	time.Sleep(10 * time.Millisecond) // a distinct mtime for the second edit
	st = a.pull(t, nil)
	if got := synctest.ReadFile(t, a.workdir+"/f.txt"); got != "B's f, edited" {
		t.Errorf("A's f.txt holds %q after B's edit and a pull", got)
	}
	if st.Downloaded != 1 || st.Conflicts != 0 {
		t.Errorf("pull stats %+v, want one download", st)
	}
	// A round with nothing new costs the listing and nothing else.
	if st := a.pull(t, nil); st.Downloaded+st.Conflicts+st.Removed+st.Deferred+st.Failed != 0 {
		t.Errorf("a round with nothing new did %+v", st)
	}
	if n := a.puts(); n != 0 {
		t.Errorf("A uploaded %d objects", n)
	}
	// A's own edit afterwards goes up as usual, over B's version.
	a.put(t, "f.txt", "A's edit")
	if got := body(t, a, "w/f.txt"); got != "A's edit" {
		t.Errorf("bucket f.txt holds %q after A's edit of the pulled file", got)
	}
	if c := a.conflictCopies(t); len(c) != 0 {
		t.Errorf("conflict copies %v", c)
	}
}

// editedByB is two machines that both hold rel as "v1" (A sent it, B
// pulled it), after which B sent its edit "B's v2"; A has not pulled it.
func editedByB(t *testing.T, rel string) (a, b *drainEnv) {
	t.Helper()
	a, b = twoMachines(t, mirror.DrainOptions{})
	a.put(t, rel, "v1")
	b.pull(t, nil)
	b.put(t, rel, "B's v2")
	return a, b
}

// A has an edit the bucket does not hold yet when B's edit arrives: A's
// file is not touched, B's version comes beside it, and once A's drain has
// run the bucket, A and B all hold both.
func TestPullKeepsUnsentEdit(t *testing.T) {
	a, b := editedByB(t, "f.txt")
	// Not recorded: as if its record were still settling.
	testfs.WriteFile(t, a.workdir+"/f.txt", "A's v2, unsent")

	st := a.pull(t, nil)
	if st.Conflicts != 1 {
		t.Errorf("pull stats %+v, want one conflict", st)
	}
	want := "f.conflict-remote-TIME.txt=B's v2 f.txt=A's v2, unsent"
	if got := masked(local(t, a.workdir)); got != want {
		t.Errorf("A's WORKDIR:\n got %s\nwant %s", got, want)
	}
	objs := map[string]string{}
	for k := range a.Srv.Objects(t, a.Bucket, "w/") {
		objs[masked(k)] = body(t, a, k)
	}
	if fmt.Sprint(objs) != "map[w/f.conflict-remote-TIME.txt:B's v2 w/f.txt:A's v2, unsent]" {
		t.Errorf("bucket after A's drain: %v", objs)
	}
	if c := a.conflicts(t); len(c) != 0 {
		t.Errorf("A has open conflicts %v", c)
	}
	b.pull(t, nil)
	if got := masked(local(t, b.workdir)); got != want {
		t.Errorf("B's WORKDIR:\n got %s\nwant %s", got, want)
	}
	if c := b.scanFinds(t); len(c) != 0 {
		t.Errorf("B's next scan would send %v", c)
	}
}

// A file deleted in the bucket goes from WORKDIR when it is unchanged here
// (and the folder it leaves empty with it); with an edit not yet sent it
// stays and is sent again.
func TestPullRemoteDeletes(t *testing.T) {
	for _, edited := range []bool{false, true} {
		t.Run(fmt.Sprint("edited=", edited), func(t *testing.T) {
			a, b := twoMachines(t, mirror.DrainOptions{Delete: true})
			a.put(t, "keep", "k")
			a.put(t, "d/f", "v1")
			b.pull(t, nil)
			a.pull(t, nil)
			os.RemoveAll(b.workdir + "/d")
			b.j.Removed("d", true)
			b.waitIdle(t)
			if edited {
				// Not recorded: the drain does not race the pull here.
				testfs.WriteFile(t, a.workdir+"/d/f", "A's edit")
			}
			st := a.pull(t, nil)
			want := "keep=k"
			if edited {
				want = "d/f=A's edit keep=k"
			}
			if got := local(t, a.workdir); got != want {
				t.Errorf("A's WORKDIR:\n got %s\nwant %s (stats %+v)", got, want, st)
			}
			if edited {
				if got := body(t, a, "w/d/f"); got != "A's edit" {
					t.Errorf("bucket d/f holds %q, want A's edit sent again", got)
				}
			} else if st.Removed != 1 {
				t.Errorf("stats %+v, want one removed", st)
			}
		})
	}
}

// A file open through the mount is not replaced under its handle: it
// waits for a later round.
func TestPullWaitsForOpenFile(t *testing.T) {
	a, _ := editedByB(t, "f")
	m := &fakeMount{}
	m.setOpen("f", true)
	if st := a.pull(t, m); st.Deferred != 1 || st.Downloaded != 0 {
		t.Errorf("stats %+v while f is open, want it deferred", st)
	}
	if got := synctest.ReadFile(t, a.workdir+"/f"); got != "v1" {
		t.Errorf("f replaced under an open handle: %q", got)
	}
	m.setOpen("f", false)
	if st := a.pull(t, m); st.Downloaded != 1 {
		t.Errorf("stats %+v once f is closed, want it downloaded", st)
	}
	if got := synctest.ReadFile(t, a.workdir+"/f"); got != "B's v2" {
		t.Errorf("f holds %q once closed", got)
	}
}

// A bucket emptied (or a listing that comes back empty) does not empty
// WORKDIR: over --max-delete, a round removes nothing.
func TestPullMaxDelete(t *testing.T) {
	a, b := twoMachines(t, mirror.DrainOptions{Delete: true})
	for i := range 30 {
		testfs.WriteFile(t, fmt.Sprintf("%s/f%02d", a.workdir, i), "x")
		a.j.Changed(fmt.Sprintf("f%02d", i))
	}
	a.waitIdle(t)
	b.pull(t, nil)
	for i := range 30 {
		os.Remove(fmt.Sprintf("%s/f%02d", b.workdir, i))
		b.j.Removed(fmt.Sprintf("f%02d", i), false)
	}
	b.waitIdle(t)
	if n := len(a.Srv.Objects(t, a.Bucket, "w/")); n != 0 {
		t.Fatalf("%d objects left after B's deletes", n)
	}
	st := a.pull(t, nil)
	if n := len(strings.Fields(local(t, a.workdir))); n != 30 || st.Removed != 0 {
		t.Errorf("A has %d files after the pull (stats %+v), want all 30 kept", n, st)
	}
}

// Without --delete a file removed here stays in the bucket; the pull does
// not bring it back while the mount runs, but does when another writer
// changes it.
func TestPullLeavesLocalRemoval(t *testing.T) {
	a, b := twoMachines(t, mirror.DrainOptions{})
	a.put(t, "f", "v1")
	b.pull(t, nil)
	a.pull(t, nil)
	os.Remove(a.workdir + "/f")
	a.j.Removed("f", false)
	a.waitIdle(t)
	if st := a.pull(t, nil); st.Downloaded != 0 || local(t, a.workdir) != "" {
		t.Errorf("the pull brought back a file removed here: %q (stats %+v)", local(t, a.workdir), st)
	}
	b.put(t, "f", "B's v2")
	a.pull(t, nil)
	if got := local(t, a.workdir); got != "f=B's v2" {
		t.Errorf("A's WORKDIR after B's edit: %q", got)
	}
}
