package main

import (
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/state"
)

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
	testfs.WriteFile(t, filepath.Join(legacy, state.DBName), "")
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

// Without $HOME the state goes under the passwd entry's home, not /tmp.
func TestStateRootWithoutHome(t *testing.T) {
	u, err := user.Current()
	if err != nil || u.HomeDir == "" {
		t.Fatalf("no passwd entry for this user: %v", err)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	if got, want := stateRoot(), filepath.Join(u.HomeDir, ".local", "state", "s3sync"); got != want {
		t.Fatalf("stateRoot() = %s, want %s", got, want)
	}
}
