package fs

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

// openToOthers lets other users reach the mountpoint (t.TempDir's parent
// is 0700).
func openToOthers(t *testing.T, tm *testMount) {
	t.Helper()
	must(t, os.Chmod(filepath.Dir(tm.mnt), 0o755))
	must(t, os.Chmod(tm.mnt, 0o755))
}

// TestOthersOwnWhatTheyCreate: with AllowOther, what another user creates
// through a root mount is theirs in WORKDIR, as on a local disk: their uid;
// their gid, or the directory's in a setgid directory (where a new
// directory is setgid too, and a file's setgid bit is dropped for a user
// outside the group); and the mode their umask gives, setuid included,
// whatever this process's own umask is. What the mount reports matches.
func TestOthersOwnWhatTheyCreate(t *testing.T) {
	testenv.NeedRoot(t, "giving files to other users")
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	const team = 100 // a group nobody is not in
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			o := mode.opts
			o.AllowOther = true
			tm := newMount(t, o)
			openToOthers(t, tm)
			must(t, os.Mkdir(tm.path("shared"), 0o777))
			must(t, syscall.Chmod(tm.path("shared"), 0o1777))
			must(t, os.Mkdir(tm.path("team"), 0o777))
			must(t, os.Chown(tm.path("team"), 0, team))
			must(t, syscall.Chmod(tm.path("team"), 0o2777))

			if errno := asUser(t, nobody, "umask", "002",
				"create", tm.path("shared/f"), "666",
				"create", tm.path("shared/suid"), "4755",
				"mkdir", tm.path("shared/d"), "777",
				"mkfifo", tm.path("shared/p"), "666",
				"symlink", "f", tm.path("shared/l"),
				"create", tm.path("team/f"), "666",
				"create", tm.path("team/sgid"), "2775",
				"mkdir", tm.path("team/d"), "777",
				"tmpfile", tm.path("shared"), "666",
			); errno != 0 {
				t.Fatalf("nobody creating through the mount: %v", errno)
			}
			// Root, the mount's own user, gets the setgid directory's
			// group too (WORKDIR's filesystem gives it, nothing chowns).
			must(t, os.WriteFile(tm.path("team/rootf"), nil, 0o644))
			must(t, os.Mkdir(tm.path("team/rootd"), 0o755))
			must(t, os.Symlink("rootf", tm.path("team/rootl")))
			for _, c := range []struct {
				rel       string
				uid, gid  uint32
				perm      uint32 // 0: a symlink, no mode to check
				wantsType uint32
			}{
				{"shared/f", 65534, 65534, 0o664, syscall.S_IFREG},
				{"shared/suid", 65534, 65534, 0o4755, syscall.S_IFREG},
				{"shared/d", 65534, 65534, 0o775, syscall.S_IFDIR},
				{"shared/p", 65534, 65534, 0o664, syscall.S_IFIFO},
				{"shared/l", 65534, 65534, 0, syscall.S_IFLNK},
				{"team/f", 65534, team, 0o664, syscall.S_IFREG},
				{"team/sgid", 65534, team, 0o775, syscall.S_IFREG},
				{"team/d", 65534, team, 0o2775, syscall.S_IFDIR},
				{"team/rootf", 0, team, 0o644, syscall.S_IFREG},
				{"team/rootd", 0, team, 0o2755, syscall.S_IFDIR},
				{"team/rootl", 0, team, 0, syscall.S_IFLNK},
			} {
				for _, where := range []string{tm.orig(c.rel), tm.path(c.rel)} {
					var st syscall.Stat_t
					must(t, syscall.Lstat(where, &st))
					if st.Mode&syscall.S_IFMT != c.wantsType {
						t.Errorf("%s: type %o, want %o", where, st.Mode&syscall.S_IFMT, c.wantsType)
					}
					if st.Uid != c.uid || st.Gid != c.gid {
						t.Errorf("%s: owned by %d:%d, want %d:%d", where, st.Uid, st.Gid, c.uid, c.gid)
					}
					if c.perm != 0 && st.Mode&0o7777 != c.perm {
						t.Errorf("%s: mode %04o, want %04o", where, st.Mode&0o7777, c.perm)
					}
				}
			}
			calls := tm.quiesce(t)
			for _, rel := range []string{"shared/f", "shared/suid", "shared/d", "shared/p", "shared/l", "team/f", "team/sgid", "team/d"} {
				if countCall(calls, changed(rel)) == 0 {
					t.Errorf("creating %s was not recorded: %v", rel, calls)
				}
			}
		})
	}
}

// TestOthersGetWorkdirPermissions: with AllowOther the kernel enforces
// WORKDIR's modes for other users as on a local disk; without it they
// cannot use the mount at all.
func TestOthersGetWorkdirPermissions(t *testing.T) {
	testenv.NeedRoot(t, "acting as another user")
	tm := newMount(t, Options{AllowOther: true})
	openToOthers(t, tm)
	write(t, tm.path("private"), "secret")
	must(t, os.Chmod(tm.path("private"), 0o600))
	write(t, tm.path("public"), "hello")
	must(t, os.Mkdir(tm.path("rootdir"), 0o755))
	for _, c := range []struct {
		what string
		ops  []string
		want syscall.Errno
	}{
		{"read a 0644 file of root's", []string{"read", tm.path("public")}, 0},
		{"read a 0600 file of root's", []string{"read", tm.path("private")}, syscall.EACCES},
		{"write a 0644 file of root's", []string{"write", tm.path("public")}, syscall.EACCES},
		{"create in a 0755 directory of root's", []string{"create", tm.path("rootdir/f"), "644"}, syscall.EACCES},
		{"mkdir in a 0755 directory of root's", []string{"mkdir", tm.path("rootdir/d"), "755"}, syscall.EACCES},
	} {
		if got := asUser(t, nobody, c.ops...); got != c.want {
			t.Errorf("nobody tried to %s: got %v, want %v", c.what, got, c.want)
		}
	}
	if _, err := os.Lstat(tm.orig("rootdir/f")); !os.IsNotExist(err) {
		t.Errorf("a refused create left rootdir/f in WORKDIR: %v", err)
	}

	own := newMount(t, Options{})
	openToOthers(t, own)
	write(t, own.path("public"), "hello")
	for _, ops := range [][]string{{"read", own.path("public")}, {"create", own.path("f"), "644"}} {
		if got := asUser(t, nobody, ops...); got != syscall.EACCES && got != syscall.EPERM {
			t.Errorf("without AllowOther, nobody tried %v: got %v, want EACCES or EPERM", ops, got)
		}
	}
}

// TestModeZeroIsShown: a file or directory with no permission bits shows
// as such through the mount, and another user cannot read it.
func TestModeZeroIsShown(t *testing.T) {
	testenv.NeedRoot(t, "acting as another user")
	tm := newMount(t, Options{AllowOther: true})
	openToOthers(t, tm)
	write(t, tm.orig("locked"), "secret")
	must(t, os.Chmod(tm.orig("locked"), 0))
	must(t, os.Mkdir(tm.orig("closed"), 0))
	write(t, tm.path("made"), "")
	must(t, os.Chmod(tm.path("made"), 0))
	for _, rel := range []string{"locked", "closed", "made"} {
		var st syscall.Stat_t
		must(t, syscall.Lstat(tm.path(rel), &st))
		if st.Mode&0o7777 != 0 {
			t.Errorf("%s has mode 0000 in WORKDIR but %04o through the mount", rel, st.Mode&0o7777)
		}
	}
	if got := asUser(t, nobody, "read", tm.path("locked")); got != syscall.EACCES {
		t.Errorf("nobody reading a mode 0000 file of root's: got %v, want EACCES", got)
	}
}

// The owner and mode of a node made through the mount are set in the
// directory the op made it in, through that directory's descriptor: a
// directory swapped meanwhile (another user renames it away and puts one
// holding a file of the same name in its place) does not get its file
// given away or its mode changed.
func TestMadeActsInTheDirectoryItWasMadeIn(t *testing.T) {
	testenv.NeedRoot(t, "giving files to other users")
	w := t.TempDir()
	must(t, os.Mkdir(w+"/a", 0o777))
	dirfd, err := unix.Open(w+"/a", unix.O_PATH|unix.O_DIRECTORY, 0)
	must(t, err)
	defer unix.Close(dirfd)
	must(t, os.Mkdir(w+"/a/x", 0o700))
	var st syscall.Stat_t
	must(t, syscall.Lstat(w+"/a/x", &st))
	var attr fuse.Attr
	attr.FromStat(&st)
	// The swap, between the mkdir and the owner's fix.
	must(t, os.Rename(w+"/a", w+"/a.old"))
	must(t, os.Mkdir(w+"/a", 0o777))
	must(t, os.WriteFile(w+"/a/x", []byte("root's"), 0o600))

	m := &mountState{asRoot: true}
	ctx := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: nobody.uid, Gid: nobody.gid}})
	if errno := m.made(ctx, dirfd, "x", -1, 0o755, &attr); errno != 0 {
		t.Fatalf("made: %v", errno)
	}
	must(t, syscall.Lstat(w+"/a.old/x", &st))
	if st.Uid != nobody.uid || st.Mode&0o7777 != 0o755 || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("the directory made: %d, mode %o; want nobody's, 0755", st.Uid, st.Mode)
	}
	if attr.Uid != nobody.uid || attr.Mode&0o7777 != 0o755 {
		t.Errorf("reported as %d, mode %o; want nobody's, 0755", attr.Uid, attr.Mode)
	}
	must(t, syscall.Lstat(w+"/a/x", &st))
	if st.Uid != 0 || st.Mode&0o7777 != 0o600 {
		t.Errorf("the file swapped in at the path: %d, mode %o; want root's, 0600 untouched", st.Uid, st.Mode)
	}
}
