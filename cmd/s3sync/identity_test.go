package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/journal"
)

func TestRootIDSame(t *testing.T) {
	base := rootID{FSUUID: "1b2c", FSID: "aa", Dev: 0x801, Ino: 1234, Birth: 5, Gen: "1"}
	for _, c := range []struct {
		name string
		mod  func(*rootID)
		same bool
	}{
		{"unchanged", func(*rootID) {}, true},
		// A removable disk gets another device number after a reboot.
		{"device renumbered, same UUID", func(r *rootID) { r.Dev, r.FSID = 0x811, "bb" }, true},
		{"another filesystem", func(r *rootID) { r.FSUUID, r.FSID = "9f9f", "cc" }, false},
		{"folder made again, new inode", func(r *rootID) { r.Ino = 99 }, false},
		// ext4 may hand a new folder the inode number just freed.
		{"folder made again, inode reused", func(r *rootID) { r.Birth = 6 }, false},
		{"no UUID now, same fsid", func(r *rootID) { r.FSUUID, r.Dev = "", 0x811 }, true},
		{"no UUID now, other fsid", func(r *rootID) { r.FSUUID, r.FSID = "", "cc" }, false},
		{"folder made again in the same clock tick", func(r *rootID) { r.Gen = "2" }, false},
		{"no birth time kept", func(r *rootID) { r.Birth = 0 }, true},
		{"no generation kept", func(r *rootID) { r.Gen = "" }, true},
	} {
		cur := base
		c.mod(&cur)
		if got := base.same(cur); got != c.same {
			t.Errorf("%s: same=%v, want %v (%s vs %s)", c.name, got, c.same, base, cur)
		}
	}
}

func TestReadRootID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	os.Mkdir(dir, 0o755)
	a, err := readRootID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := readRootID(dir); !a.same(b) {
		t.Fatalf("one folder read twice differs: %s, %s", a, b)
	}
	os.Remove(dir)
	os.Mkdir(dir, 0o755)
	if b, _ := readRootID(dir); a.same(b) {
		t.Errorf("a folder made again at the same path is taken for the old one: %s", b)
	}
}

// A state dir named by the spelling of WORKDIR given (before real paths
// were used) is renamed to the real path's name, so every spelling finds
// it; status finds it by any spelling.
func TestMountStateDirLegacyName(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	work := filepath.Join(t.TempDir(), "work")
	os.Mkdir(work, 0o755)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(work, link); err != nil {
		t.Fatal(err)
	}
	const url = "s3://b/p/"
	legacy := stateDirName(link, url)
	testfs.WriteFile(t, filepath.Join(legacy, journal.DBName), "")
	testfs.WriteFile(t, filepath.Join(legacy, infoFile), `{"workdir":"`+link+`"}`)

	if got := defaultStateDir(link, url); got != legacy {
		t.Errorf("defaultStateDir before the rename = %s, want the old %s", got, legacy)
	}
	for _, spelling := range []string{link, work} {
		if got := findStateDirs(spelling); len(got) != 1 || got[0] != legacy {
			t.Errorf("status %s finds %v, want %s", spelling, got, legacy)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	got := mountStateDir(link, work, url, log)
	if want := stateDirName(work, url); got != want || !hasState(want) || hasState(legacy) {
		t.Errorf("mountStateDir = %s, want %s renamed from %s", got, want, legacy)
	}
	for _, spelling := range []string{link, work} {
		if got := defaultStateDir(spelling, url); got != stateDirName(work, url) {
			t.Errorf("defaultStateDir(%s) = %s after the rename", spelling, got)
		}
	}
}
