package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A state dir openDB makes is private; one that exists is used as it is,
// never chmod-ed (a user's --state-dir may be a folder they share), and the
// database in it is private either way.
func TestOpenDBModes(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	db0, err := openDB(shared)
	if err != nil {
		t.Fatal(err)
	}
	db0.Close()
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o755 {
		t.Errorf("existing state dir was chmod-ed to %o", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(filepath.Join(shared, DBName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %o, want 600", fi.Mode().Perm())
	}

	private := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := openDB(private)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if fi, _ := os.Stat(filepath.Join(private, DBName)); fi.Mode().Perm() != 0o600 {
		t.Errorf("state.db mode %o, want 600", fi.Mode().Perm())
	}

	fresh := filepath.Join(t.TempDir(), "a", "b")
	db2, err := openDB(fresh)
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	if fi, _ := os.Stat(fresh); fi.Mode().Perm() != 0o700 {
		t.Errorf("new state dir mode %o, want 700", fi.Mode().Perm())
	}
}

func TestOpenDBLocked(t *testing.T) {
	dir := t.TempDir()
	db, err := openDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = openDB(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second openDB: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("lock timeout took %v", d)
	}
}
