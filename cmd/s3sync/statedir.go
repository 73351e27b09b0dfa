package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
