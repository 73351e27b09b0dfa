//go:build linux

package fs

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLoopbackSwappedDir: a directory of the backing tree swapped for a
// link while the kernel holds it (a process's working directory in it)
// leads nowhere: what is asked there fails instead of acting in the
// link's target. With and without LoopbackRoot.OpenDir.
func TestLoopbackSwappedDir(t *testing.T) {
	for _, hook := range []bool{false, true} {
		name := "default"
		if hook {
			name = "OpenDir"
		}
		t.Run(name, func(t *testing.T) {
			tc := newTestCase(t, &testOptions{attrCache: true, entryCache: true, suppressDebug: true, directMount: os.Geteuid() == 0})
			root := tc.loopback.(*LoopbackNode).RootData
			if hook {
				rootFd, err := unix.Open(tc.origDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unix.Close(rootFd) })
				root.OpenDir = func(rel string) (int, error) {
					if rel == "" {
						rel = "."
					}
					return unix.Openat2(rootFd, rel, &unix.OpenHow{
						Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
						Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
					})
				}
			}
			outside := t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "f"), []byte("outside"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(tc.origDir, "d"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.writeOrig("d/f", "inside", 0o644)
			dir := filepath.Join(tc.mntDir, "d")
			dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dfd)
			var st unix.Stat_t
			if err := unix.Fstatat(dfd, "f", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(tc.origDir, "d"), filepath.Join(tc.origDir, "d.away")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(tc.origDir, "d")); err != nil {
				t.Fatal(err)
			}
			for _, op := range []struct {
				name string
				err  error
			}{
				{"create", func() error {
					fd, err := unix.Openat(dfd, "new", unix.O_CREAT|unix.O_WRONLY, 0o644)
					if err == nil {
						unix.Close(fd)
					}
					return err
				}()},
				{"mkdir", unix.Mkdirat(dfd, "newdir", 0o755)},
				{"unlink", unix.Unlinkat(dfd, "f", 0)},
				{"chmod", unix.Fchmodat(dfd, "f", 0o600, 0)},
				{"rename", unix.Renameat(dfd, "f", dfd, "g")},
			} {
				if op.err == nil {
					t.Errorf("%s in a directory swapped for a link succeeded", op.name)
				} else if op.err != syscall.ELOOP && op.err != syscall.ENOTDIR && op.err != syscall.ENOENT {
					t.Errorf("%s in a directory swapped for a link: %v, want ELOOP, ENOTDIR or ENOENT", op.name, op.err)
				}
			}
			ents, err := os.ReadDir(outside)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 || ents[0].Name() != "f" {
				t.Errorf("the link's target now holds %v, want only f", ents)
			}
			if b, err := os.ReadFile(filepath.Join(outside, "f")); err != nil || string(b) != "outside" {
				t.Errorf("the link's target's f: %q, %v", b, err)
			} else if fi, _ := os.Stat(filepath.Join(outside, "f")); fi.Mode().Perm() != 0o644 {
				t.Errorf("the link's target's f has mode %v, want 0644", fi.Mode())
			}
		})
	}
}
