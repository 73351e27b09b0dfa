package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// Nothing destroyed by a mistake: a state knows its WORKDIR and remote, and
// a mount never turns a folder that lost its files into a bucket that lost
// them.

// refused runs the mount expecting it to refuse before mounting, and
// returns what it said.
func (m *mount) refused() string {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, m.args...).CombinedOutput()
	if err == nil {
		m.t.Fatalf("s3sync %s: want a refusal, it ran and ended cleanly:\n%s", strings.Join(m.args, " "), out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		m.t.Fatalf("s3sync %s: %v, want exit 1:\n%s", strings.Join(m.args, " "), err, out)
	}
	return string(out)
}

// withFlags returns m's arguments with flags added after "mount".
func (m *mount) withFlags(flags ...string) {
	m.args = append(append([]string{m.args[0]}, flags...), m.args[1:]...)
}

func (m *mount) bucket() string {
	return strings.SplitN(strings.TrimPrefix(m.url, "s3://"), "/", 2)[0]
}

func writeFiles(t *testing.T, dir string, n int) {
	for i := range n {
		testfs.WriteFile(t, fmt.Sprintf("%s/f%02d.txt", dir, i), fmt.Sprintf("file %d\n", i))
	}
}

func wantOneLine(t *testing.T, out string, parts ...string) {
	t.Helper()
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 {
		t.Errorf("want one line, got:\n%s", out)
	}
	for _, p := range parts {
		if !strings.Contains(out, p) {
			t.Errorf("output lacks %q:\n%s", p, out)
		}
	}
}

// The external disk did not mount, or a script made the folder again: the
// same path is an empty folder. The mount refuses and the bucket keeps
// everything; with --adopt it compares with the bucket and deletes nothing.
func TestMountRefusesReplacedWorkdir(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	writeFiles(t, m.mountpoint, 30)
	m.waitDrained(60 * time.Second)
	m.stop()

	if err := os.RemoveAll(m.workdir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m.workdir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := m.refused()
	wantOneLine(t, out, "WORKDIR "+m.workdir+" is not the folder this state was made for", "--adopt")
	if n := len(srv.Objects(t, m.bucket(), "data/")); n != 30 {
		t.Fatalf("after the refusal the bucket holds %d objects, want 30", n)
	}

	// Adopted: one of the old files is back (restored), one is new. Nothing
	// only in the bucket is deleted; the new file is sent.
	testfs.WriteFile(t, m.workdir+"/f00.txt", "file 0\n")
	testfs.WriteFile(t, m.workdir+"/restored-elsewhere.txt", "new")
	adopt := m.args
	m.withFlags("--adopt")
	m.start()
	m.waitDrained(60 * time.Second)
	objs := srv.Objects(t, m.bucket(), "data/")
	if len(objs) != 31 || objs["data/restored-elsewhere.txt"] == 0 {
		t.Errorf("after --adopt the bucket holds %d objects, want 31: %v", len(objs), objs)
	}
	m.stop()
	if !strings.Contains(m.log.String(), "--adopt") {
		t.Errorf("the log does not say what --adopt did:\n%s", m.log)
	}
	// The adopted folder is now the state's own.
	m.args = adopt
	m.start()
	m.stop()
}

// The same state dir with another remote: refused, nothing sent there.
func TestMountRefusesOtherRemote(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/a.txt", "a")
	m.waitDrained(60 * time.Second)
	m.stop()

	old := m.url
	m.url = "s3://" + m.bucket() + "/other"
	m.args[len(m.args)-1] = m.url
	out := m.refused()
	wantOneLine(t, out, "mirrors to "+old+"/, not "+m.url+"/", "--adopt")
	if objs := srv.Objects(t, m.bucket(), "other/"); len(objs) != 0 {
		t.Errorf("a refused mount sent %v", objs)
	}
	m.withFlags("--adopt")
	m.start()
	m.waitDrained(60 * time.Second)
	if objs := srv.Objects(t, m.bucket(), "other/"); len(objs) != 1 {
		t.Errorf("after --adopt the new remote holds %v", objs)
	}
}

// The same bucket name on another store (the endpoint from --endpoint-url,
// a profile or the environment): refused before any request, with the
// --adopt advice; another spelling of the same store's endpoint mounts.
func TestMountRefusesOtherStore(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/a.txt", "a")
	m.waitDrained(60 * time.Second)
	m.stop()

	if m.args[1] != "--endpoint-url" {
		t.Fatalf("newMount's arguments changed: %q", m.args)
	}
	m.args[2] = strings.Replace(srv.Endpoint, "127.0.0.1", "localhost", 1)
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/b.txt", "b")
	m.waitDrained(60 * time.Second)
	m.stop()
	m.bucketMatchesWorkdir()

	m.args[2] = "https://s3.eu-central-1.wasabisys.invalid"
	out := m.refused()
	wantOneLine(t, out, "mirrors to the store at "+strings.Replace(srv.Endpoint, "127.0.0.1", "localhost", 1)+", not the one at https://s3.eu-central-1.wasabisys.invalid", "--adopt")
}

// A WORKDIR reached through a symlink and by its real path is one folder:
// one state dir, which status finds by either spelling.
func TestMountStateSharedBySpellings(t *testing.T) {
	srv := s3test.Get(t)
	xdg := t.TempDir()
	t.Setenv("XDG_STATE_HOME", xdg)
	m := newMount(t, srv.NewBucket(t))
	for i, a := range m.args {
		if a == "--state-dir" {
			m.args = append(m.args[:i:i], m.args[i+2:]...)
			break
		}
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(m.workdir, link); err != nil {
		t.Fatal(err)
	}
	realDir := m.args[len(m.args)-3]
	m.args[len(m.args)-3] = link
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/f.txt", "x")
	m.waitFor("status by the real path to report the file synced", 60*time.Second, func() bool {
		out, err := exec.Command(bin, "status", "--json", realDir).Output()
		return err == nil && strings.Contains(string(out), `"pending": 0,`) && strings.Contains(string(out), `"last_upload"`)
	})
	m.stop()

	m.args[len(m.args)-3] = realDir
	m.start()
	out, err := exec.Command(bin, "status", "--json", link).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"mounted": true`) {
		t.Errorf("status by the link's spelling: %v\n%s", err, out)
	}
	m.stop()
	if dirs, _ := filepath.Glob(filepath.Join(xdg, "s3sync", "*")); len(dirs) != 1 {
		t.Errorf("state dirs: %v, want one", dirs)
	}
}

// A --state-dir that exists and others may read is refused, not chmod-ed.
func TestMountStateDirNotPrivate(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t))
	if err := os.Mkdir(m.stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := m.refused()
	wantOneLine(t, out, "state dir "+m.stateDir+" is open to other users (mode 0755)", "chmod 700")
	if st, _ := os.Stat(m.stateDir); st.Mode().Perm() != 0o755 {
		t.Errorf("state dir mode %v, want it left at 0755", st.Mode().Perm())
	}
	if ents, _ := os.ReadDir(m.stateDir); len(ents) != 0 {
		t.Errorf("a refused state dir was written to: %v", ents)
	}
}

// refusedDeletions is how many files `s3sync status --json` says the
// start-up scan did not delete (0: none), and status's text line on them.
func (m *mount) refusedDeletions() (int, string) {
	m.t.Helper()
	out, err := exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
	if err != nil {
		m.t.Fatalf("status --json: %v", err)
	}
	var r struct {
		Refused struct{ Files int } `json:"refused_deletions"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		m.t.Fatalf("status output %q: %v", out, err)
	}
	out, err = exec.Command(bin, "status", "--state-dir", m.stateDir, m.workdir).Output()
	if err != nil {
		m.t.Fatalf("status: %v", err)
	}
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "  not deleted:") {
			return r.Refused.Files, strings.TrimSpace(l)
		}
	}
	return r.Refused.Files, ""
}

// Most files vanished from WORKDIR while it was not mounted: the mount
// serves and sends new files, deletes nothing, and its log and status say
// why and what allows it, mounted or not; with that --max-delete, the next
// mount deletes them, logs how many, and status no longer tells of them.
func TestMountMaxDeleteAtStartup(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t), "--delete")
	m.start()
	writeFiles(t, m.mountpoint, 30)
	m.waitDrained(60 * time.Second)
	m.stop()

	for i := range 25 {
		os.Remove(fmt.Sprintf("%s/f%02d.txt", m.workdir, i))
	}
	testfs.WriteFile(t, m.workdir+"/while-unmounted.txt", "new")
	m.start()
	testfs.WriteFile(t, m.mountpoint+"/through-the-mount.txt", "new")
	m.waitDrained(60 * time.Second)
	objs := srv.Objects(t, m.bucket(), "data/")
	if len(objs) != 32 || objs["data/while-unmounted.txt"] == 0 || objs["data/through-the-mount.txt"] == 0 {
		t.Errorf("bucket holds %d objects, want the 30 and the 2 new: %v", len(objs), objs)
	}
	if n, line := m.refusedDeletions(); n != 25 || !strings.Contains(line, "25 files gone from WORKDIR") || !strings.Contains(line, "--max-delete 25") {
		t.Errorf("status while mounted: %d refused deletions, line %q; want 25, with --max-delete 25", n, line)
	}
	m.stop()
	if n, line := m.refusedDeletions(); n != 25 || !strings.Contains(line, "--max-delete 25") {
		t.Errorf("status after unmount: %d refused deletions, line %q; want 25, with --max-delete 25", n, line)
	}
	for _, want := range []string{"25 of the 30 files", "none of them is deleted from the bucket", "--max-delete 25"} {
		if !strings.Contains(m.log.String(), want) {
			t.Errorf("mount log lacks %q:\n%s", want, m.log)
		}
	}

	m.withFlags("--max-delete", "25")
	m.start()
	m.waitDrained(60 * time.Second)
	m.stop()
	if objs := srv.Objects(t, m.bucket(), "data/"); len(objs) != 7 {
		t.Errorf("with --max-delete 25 the bucket holds %d objects, want 7: %v", len(objs), objs)
	}
	m.bucketMatchesWorkdir()
	for _, want := range []string{"deleting from the bucket the files removed", "files=25", "deleted from the bucket", "objects=25"} {
		if !strings.Contains(m.log.String(), want) {
			t.Errorf("mount log lacks %q:\n%s", want, m.log)
		}
	}
	if n, line := m.refusedDeletions(); n != 0 || line != "" {
		t.Errorf("status after the deletions: %d refused, line %q; want none", n, line)
	}
}
