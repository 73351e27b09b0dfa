package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/s3sync/s3sync/state"
)

// checkPrivate refuses a state dir that exists and that other users may
// read or write: the journal names the files the user works on, and a
// stranger's state.db would decide what is deleted. It is never chmod-ed
// (it may be a folder the user shares on purpose); one that does not exist
// yet is made private by state.Open.
func checkPrivate(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return &exitError{code: exitFailed, msg: fmt.Sprintf("state dir %s is open to other users (mode %04o), and the journal names the files you work on; "+
			"give a --state-dir that does not exist yet (s3sync makes it private), or make this one private with chmod 700 %s", dir, perm, dir)}
	}
	return nil
}

// mountStateDir is the default state dir of a mount of workdir (its real
// path; spelled as given) to remoteURL. A state dir named by the spelling,
// made before real paths were used, is renamed so every spelling finds it.
func mountStateDir(spelled, workdir, remoteURL string, log *slog.Logger) string {
	dir := stateDirName(workdir, remoteURL)
	legacy := stateDirName(spelled, remoteURL)
	if legacy == dir || hasState(dir) || !hasState(legacy) {
		return dir
	}
	if err := os.Rename(legacy, dir); err != nil {
		log.Warn("could not rename the state dir to its new name; using it where it is", "dir", legacy, "err", err)
		return legacy
	}
	log.Info("state dir renamed: it is now named by WORKDIR's real path", "from", legacy, "to", dir)
	return dir
}

// realPath is path with every symlink resolved, or path as it is when that
// fails (it no longer exists).
func realPath(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// inside reports whether dir is below workdir (both real paths), and its
// path relative to it.
func inside(workdir, dir string) (string, bool) {
	rel, err := filepath.Rel(workdir, dir)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// stateRoot is $XDG_STATE_HOME/s3sync (default ~/.local/state/s3sync).
func stateRoot() string {
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "s3sync")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		// No $HOME (a unit without User=, a cron job): the passwd entry's
		// home, never /tmp, where a journal would not survive a reboot.
		if u, uerr := user.Current(); uerr == nil && u.HomeDir != "" {
			home = u.HomeDir
		} else {
			home = os.TempDir()
		}
	}
	return filepath.Join(home, ".local", "state", "s3sync")
}

// defaultStateDir is the state dir of WORKDIR's mounts to remoteURL: one
// per folder and remote. The folder is named by its real path, so every
// spelling of it (through a symlink, say) shares one journal; a state dir
// made before that, named by the spelling given, is used while there is
// no other.
func defaultStateDir(workdir, remoteURL string) string {
	dir := stateDirName(realPath(workdir), remoteURL)
	if legacy := stateDirName(workdir, remoteURL); legacy != dir && !hasState(dir) && hasState(legacy) {
		return legacy
	}
	return dir
}

func hasState(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, state.DBName))
	return err == nil
}

func stateDirName(workdir, remoteURL string) string {
	sum := sha256.Sum256([]byte(workdir + "\n" + remoteURL))
	name := filepath.Base(workdir)
	if len(name) > 40 {
		name = name[:40]
	}
	return filepath.Join(stateRoot(), name+"-"+hex.EncodeToString(sum[:6]))
}
