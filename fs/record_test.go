package fs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ioModes runs each behaviour test with the kernel doing the I/O itself
// (FUSE passthrough, where this kernel supports it) and with all I/O going
// through us, since the two report writes by different means.
var ioModes = []struct {
	name string
	opts Options
}{
	{"passthrough", Options{}},
	{"no-passthrough", Options{DisablePassthrough: true}},
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantContent(t *testing.T, p, want string) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", p, got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecords drives the mount as a user would and checks what lands in
// WORKDIR and exactly which changes were recorded.
func TestRecords(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, work string) // directly in WORKDIR, not recorded
		act   func(t *testing.T, tm *testMount)
		want  []call
		check func(t *testing.T, work string)
		// ignoreSync: Recorder.Sync calls are not part of want.
		ignoreSync bool
		// wantPassthrough, if set, replaces want when the kernel does
		// the I/O itself.
		wantPassthrough []call
		// orWant, if set, is another order of the same records that is
		// as right (one depends on when an asynchronous RELEASE comes).
		orWant []call
	}{{
		name: "create, many writes, close is one change",
		act: func(t *testing.T, tm *testMount) {
			f, err := os.Create(tm.path("f"))
			must(t, err)
			for i := range 100 {
				fmt.Fprintf(f, "line %d\n", i)
			}
			must(t, f.Close())
		},
		want: []call{changed("f")},
		check: func(t *testing.T, work string) {
			b, _ := os.ReadFile(work + "/f")
			if !bytes.HasPrefix(b, []byte("line 0\n")) || !bytes.HasSuffix(b, []byte("line 99\n")) {
				t.Errorf("WORKDIR/f = %q...", b[:min(len(b), 20)])
			}
		},
	}, {
		name:  "append from the shell",
		setup: func(t *testing.T, work string) { write(t, work+"/log", "one\n") },
		act: func(t *testing.T, tm *testMount) {
			run(t, "sh", "-c", "echo two >> "+tm.path("log"))
		},
		want:  []call{changed("log")},
		check: func(t *testing.T, work string) { wantContent(t, work+"/log", "one\ntwo\n") },
	}, {
		name:  "O_TRUNC rewrite",
		setup: func(t *testing.T, work string) { write(t, work+"/f", "old content") },
		act:   func(t *testing.T, tm *testMount) { write(t, tm.path("f"), "new") },
		want:  []call{changed("f")},
		check: func(t *testing.T, work string) { wantContent(t, work+"/f", "new") },
	}, {
		name:  "O_TRUNC without writing",
		setup: func(t *testing.T, work string) { write(t, work+"/f", "old content") },
		act: func(t *testing.T, tm *testMount) {
			f, err := os.OpenFile(tm.path("f"), os.O_WRONLY|os.O_TRUNC, 0)
			must(t, err)
			must(t, f.Close())
		},
		want:  []call{changed("f")},
		check: func(t *testing.T, work string) { wantContent(t, work+"/f", "") },
	}, {
		name:  "editor: write temp file, rename over",
		setup: func(t *testing.T, work string) { write(t, work+"/doc.txt", "v1") },
		act: func(t *testing.T, tm *testMount) {
			write(t, tm.path(".doc.txt.tmp"), "v2")
			must(t, os.Rename(tm.path(".doc.txt.tmp"), tm.path("doc.txt")))
		},
		// The temp file is reported at its RELEASE, which the kernel sends
		// after close(2) returns: before or after the rename, under the name
		// of the time. Either way the bucket gets v2 as doc.txt once.
		want:   []call{changed(".doc.txt.tmp"), renamed(".doc.txt.tmp", "doc.txt", false)},
		orWant: []call{renamed(".doc.txt.tmp", "doc.txt", false), changed("doc.txt")},
		check:  func(t *testing.T, work string) { wantContent(t, work+"/doc.txt", "v2") },
	}, {
		// A dup'ed descriptor closed after the rename makes the release
		// come after it: the new content is reported under the new name,
		// after the rename.
		name:  "editor: temp file released after the rename over",
		setup: func(t *testing.T, work string) { write(t, work+"/doc.txt", "v1") },
		act: func(t *testing.T, tm *testMount) {
			f, err := os.Create(tm.path(".doc.txt.tmp"))
			must(t, err)
			_, err = f.WriteString("v2")
			must(t, err)
			dup, err := syscall.Dup(int(f.Fd()))
			must(t, err)
			must(t, f.Close())
			must(t, os.Rename(tm.path(".doc.txt.tmp"), tm.path("doc.txt")))
			must(t, syscall.Close(dup))
		},
		want:  []call{renamed(".doc.txt.tmp", "doc.txt", false), changed("doc.txt")},
		check: func(t *testing.T, work string) { wantContent(t, work+"/doc.txt", "v2") },
	}, {
		name:  "editor: backup rename, rewrite",
		setup: func(t *testing.T, work string) { write(t, work+"/doc.txt", "v1") },
		act: func(t *testing.T, tm *testMount) {
			must(t, os.Rename(tm.path("doc.txt"), tm.path("doc.txt~")))
			write(t, tm.path("doc.txt"), "v2")
		},
		want: []call{renamed("doc.txt", "doc.txt~", false), changed("doc.txt")},
		check: func(t *testing.T, work string) {
			wantContent(t, work+"/doc.txt", "v2")
			wantContent(t, work+"/doc.txt~", "v1")
		},
	}, {
		name: "mv of a directory holding 1000 files is one rename",
		setup: func(t *testing.T, work string) {
			must(t, os.MkdirAll(work+"/a/big", 0o755))
			for i := range 1000 {
				write(t, fmt.Sprintf("%s/a/big/%04d", work, i), "x")
			}
		},
		act: func(t *testing.T, tm *testMount) {
			must(t, os.Mkdir(tm.path("b"), 0o755))
			run(t, "mv", tm.path("a/big"), tm.path("b/big"))
		},
		want: []call{changed("b"), renamed("a/big", "b/big", true)},
		check: func(t *testing.T, work string) {
			ents, err := os.ReadDir(work + "/b/big")
			if err != nil || len(ents) != 1000 {
				t.Errorf("WORKDIR/b/big has %d entries (%v), want 1000", len(ents), err)
			}
		},
	}, {
		name: "rm -r reports every file and directory",
		setup: func(t *testing.T, work string) {
			must(t, os.MkdirAll(work+"/d/e", 0o755))
			write(t, work+"/d/e/f", "x")
			write(t, work+"/d/g", "x")
		},
		act: func(t *testing.T, tm *testMount) { run(t, "rm", "-r", tm.path("d")) },
		check: func(t *testing.T, work string) {
			if _, err := os.Lstat(work + "/d"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("WORKDIR/d still there: %v", err)
			}
		},
	}, {
		name:  "unlink and rmdir",
		setup: func(t *testing.T, work string) { must(t, os.Mkdir(work+"/d", 0o755)); write(t, work+"/d/f", "x") },
		act: func(t *testing.T, tm *testMount) {
			must(t, os.Remove(tm.path("d/f")))
			must(t, os.Remove(tm.path("d")))
		},
		want: []call{removed("d/f", false), removed("d", true)},
	}, {
		name:  "chmod, utimes, truncate",
		setup: func(t *testing.T, work string) { write(t, work+"/f", "0123456789") },
		act: func(t *testing.T, tm *testMount) {
			must(t, os.Chmod(tm.path("f"), 0o600))
			mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			must(t, os.Chtimes(tm.path("f"), mt, mt))
			must(t, os.Truncate(tm.path("f"), 4))
		},
		want: []call{changed("f"), changed("f"), changed("f")},
		check: func(t *testing.T, work string) {
			fi, err := os.Stat(work + "/f")
			must(t, err)
			if fi.Mode().Perm() != 0o600 || fi.Size() != 4 {
				t.Errorf("WORKDIR/f: mode %v size %d, want 0600 and 4", fi.Mode(), fi.Size())
			}
		},
	}, {
		// The kernel sends fchmod, fchown and futimens without the handle,
		// like their path forms; each is recorded under the file's name at
		// the time, also once it was renamed while open.
		name: "tar: fchmod, fchown, futimens of the file it writes, renamed meanwhile",
		act: func(t *testing.T, tm *testMount) {
			f, err := os.OpenFile(tm.path("f"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			must(t, err)
			_, err = f.WriteString("content")
			must(t, err)
			must(t, f.Chmod(0o640))
			must(t, os.Rename(tm.path("f"), tm.path("g")))
			must(t, f.Chown(os.Getuid(), os.Getgid()))
			mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			must(t, unix.Futimes(int(f.Fd()), []unix.Timeval{unix.NsecToTimeval(mt.UnixNano()), unix.NsecToTimeval(mt.UnixNano())}))
			must(t, f.Close())
		},
		want: []call{changed("f"), renamed("f", "g", false), changed("g"), changed("g"), changed("g")},
		check: func(t *testing.T, work string) {
			fi, err := os.Stat(work + "/g")
			must(t, err)
			if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("WORKDIR/g: mode %v mtime %v, want 0640 and 2020-01-02 03:04:05", fi.Mode(), fi.ModTime())
			}
		},
	}, {
		name:  "ftruncate through an open handle is reported at close",
		setup: func(t *testing.T, work string) { write(t, work+"/f", "0123456789") },
		act: func(t *testing.T, tm *testMount) {
			f, err := os.OpenFile(tm.path("f"), os.O_RDWR, 0)
			must(t, err)
			must(t, f.Truncate(3))
			must(t, f.Close())
		},
		want:  []call{changed("f")},
		check: func(t *testing.T, work string) { wantContent(t, work+"/f", "012") },
	}, {
		name:  "symlink and hard link",
		setup: func(t *testing.T, work string) { write(t, work+"/f", "x") },
		act: func(t *testing.T, tm *testMount) {
			must(t, os.Symlink("f", tm.path("sym")))
			must(t, os.Link(tm.path("f"), tm.path("hard")))
		},
		// The name linked to is reported too: the syncer learns both
		// names of the file (a change through one is sent under both).
		want: []call{changed("sym"), changed("hard"), changed("f")},
		check: func(t *testing.T, work string) {
			if target, err := os.Readlink(work + "/sym"); err != nil || target != "f" {
				t.Errorf("WORKDIR/sym -> %q, %v", target, err)
			}
			a, _ := os.Stat(work + "/f")
			b, _ := os.Stat(work + "/hard")
			if !os.SameFile(a, b) {
				t.Errorf("WORKDIR/hard is not a hard link of f")
			}
		},
	}, {
		name: "RENAME_EXCHANGE reports both names changed",
		setup: func(t *testing.T, work string) {
			write(t, work+"/a", "A")
			write(t, work+"/b", "B")
		},
		act: func(t *testing.T, tm *testMount) {
			must(t, unix.Renameat2(unix.AT_FDCWD, tm.path("a"), unix.AT_FDCWD, tm.path("b"), unix.RENAME_EXCHANGE))
		},
		want: []call{changed("a"), changed("b")},
		check: func(t *testing.T, work string) {
			wantContent(t, work+"/a", "B")
			wantContent(t, work+"/b", "A")
		},
	}, {
		name: "RENAME_EXCHANGE of directories reports both trees",
		setup: func(t *testing.T, work string) {
			must(t, os.Mkdir(work+"/a", 0o755))
			write(t, work+"/a/x", "A")
			must(t, os.Mkdir(work+"/b", 0o755))
			write(t, work+"/b/y", "B")
			write(t, work+"/f", "F")
		},
		act: func(t *testing.T, tm *testMount) {
			must(t, unix.Renameat2(unix.AT_FDCWD, tm.path("a"), unix.AT_FDCWD, tm.path("b"), unix.RENAME_EXCHANGE))
			must(t, unix.Renameat2(unix.AT_FDCWD, tm.path("a"), unix.AT_FDCWD, tm.path("f"), unix.RENAME_EXCHANGE))
		},
		want: []call{renamed("", "a", true), renamed("", "b", true), removed("a", true), changed("a"), renamed("", "f", true)},
		check: func(t *testing.T, work string) {
			wantContent(t, work+"/a", "F")
			wantContent(t, work+"/f/y", "B")
			wantContent(t, work+"/b/x", "A")
		},
	}, {
		name:  "RENAME_NOREPLACE is a rename",
		setup: func(t *testing.T, work string) { write(t, work+"/a", "A") },
		act: func(t *testing.T, tm *testMount) {
			must(t, unix.Renameat2(unix.AT_FDCWD, tm.path("a"), unix.AT_FDCWD, tm.path("c"), unix.RENAME_NOREPLACE))
		},
		want: []call{renamed("a", "c", false)},
	}, {
		name:  "opening for write without writing records nothing without passthrough",
		setup: func(t *testing.T, work string) { write(t, work+"/f", "x") },
		act: func(t *testing.T, tm *testMount) {
			f, err := os.OpenFile(tm.path("f"), os.O_RDWR, 0)
			must(t, err)
			must(t, f.Close())
		},
		// Under passthrough we cannot see whether the handle wrote, so
		// a writable handle is reported at release regardless.
		wantPassthrough: []call{changed("f")},
	}, {
		name: "mkdir, mknod fifo",
		act: func(t *testing.T, tm *testMount) {
			must(t, os.Mkdir(tm.path("d"), 0o755))
			must(t, syscall.Mkfifo(tm.path("d/fifo"), 0o644))
		},
		want: []call{changed("d"), changed("d/fifo")},
	}, {
		name:  "mmap write",
		setup: func(t *testing.T, work string) { write(t, work+"/m", "hello world") },
		act: func(t *testing.T, tm *testMount) {
			// In another process: a page fault on the mount stalls its
			// thread outside any syscall, so in this process, which
			// serves the mount, the GC could never stop the world.
			cmd := exec.Command(os.Args[0], "-test.run=^TestMmapHelper$")
			cmd.Env = append(os.Environ(), "S3SYNC_FS_MMAP_FILE="+tm.path("m"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mmap helper: %v\n%s", err, out)
			}
		},
		// msync(MS_SYNC) is an fsync when the I/O goes through us.
		want:       []call{changed("m")},
		ignoreSync: true,
		check:      func(t *testing.T, work string) { wantContent(t, work+"/m", "HELLO world") },
	}, {
		name: "fsync records the change before waiting for the recorder",
		act: func(t *testing.T, tm *testMount) {
			f, err := os.Create(tm.path("f"))
			must(t, err)
			_, err = f.WriteString("data")
			must(t, err)
			must(t, f.Sync())
			must(t, f.Close())
			d, err := os.Open(tm.mnt)
			must(t, err)
			must(t, d.Sync())
			must(t, d.Close())
		},
		want: []call{changed("f"), {op: "sync"}, {op: "sync"}},
	}}

	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					tm := newMount(t, mode.opts)
					if tc.setup != nil {
						tc.setup(t, tm.work)
					}
					tc.act(t, tm)
					got := tm.quiesce(t)
					if tc.ignoreSync {
						got = slices.DeleteFunc(got, func(c call) bool { return c.op == "sync" })
					}
					want := tc.want
					if tc.wantPassthrough != nil && tm.m.kernelPassthrough && !tm.m.noPassthrough {
						want = tc.wantPassthrough
					}
					if tc.name == "rm -r reports every file and directory" {
						checkRmR(t, got)
					} else if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) && (tc.orWant == nil || !reflect.DeepEqual(got, tc.orWant)) {
						t.Errorf("recorded %v\nwant     %v", got, want)
					}
					if tc.check != nil {
						tc.check(t, tm.work)
					}
				})
			}
		})
	}
}

// checkRmR: rm -r may visit d/g and d/e in either order, but each entry is
// removed once and every directory after what it held.
func checkRmR(t *testing.T, got []call) {
	t.Helper()
	pos := map[call]int{}
	for i, c := range got {
		pos[c] = i
	}
	want := []call{removed("d/e/f", false), removed("d/e", true), removed("d/g", false), removed("d", true)}
	if len(got) != len(want) {
		t.Fatalf("recorded %v, want the four removals %v", got, want)
	}
	for _, w := range want {
		if _, ok := pos[w]; !ok {
			t.Fatalf("recorded %v, missing %v", got, w)
		}
	}
	if pos[want[0]] > pos[want[1]] || pos[want[1]] > pos[want[3]] || pos[want[2]] > pos[want[3]] {
		t.Errorf("removal order %v: a directory before its contents", got)
	}
}

// TestTools copies a tree in with cp -a and tar, and reads it back out with
// tar: WORKDIR gets identical content and every file is reported.
func TestTools(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tm := newMount(t, mode.opts)
			src := t.TempDir()
			files := map[string]string{}
			for i := range 20 {
				rel := fmt.Sprintf("tree/sub%d/file%d.txt", i%4, i)
				files[rel] = fmt.Sprintf("content %d %s", i, bytes.Repeat([]byte{'z'}, i*1000))
				must(t, os.MkdirAll(filepath.Dir(filepath.Join(src, rel)), 0o755))
				write(t, filepath.Join(src, rel), files[rel])
			}
			run(t, "cp", "-a", src+"/tree", tm.path("cp"))
			run(t, "tar", "-C", src, "-cf", src+"/t.tar", "tree")
			run(t, "tar", "-C", tm.mnt, "-xf", src+"/t.tar")
			out := t.TempDir()
			run(t, "sh", "-c", "tar -C "+tm.mnt+" -cf - cp | tar -C "+out+" -xf -")
			calls := tm.quiesce(t)

			for rel, want := range files {
				wantContent(t, tm.orig(rel), want)
				cpRel := "cp" + rel[len("tree"):]
				wantContent(t, tm.orig(cpRel), want)
				wantContent(t, filepath.Join(out, cpRel), want)
				for _, p := range []string{rel, cpRel} {
					if n := countCall(calls, changed(p)); n == 0 {
						t.Errorf("%s never recorded Changed", p)
					}
				}
			}
		})
	}
}

func countCall(calls []call, c call) int {
	n := 0
	for _, x := range calls {
		if x == c {
			n++
		}
	}
	return n
}

// TestMmapHelper is the child process of the mmap case of TestRecords: it
// writes "HELLO" over the start of S3SYNC_FS_MMAP_FILE through a shared
// writable mapping.
func TestMmapHelper(t *testing.T) {
	p := os.Getenv("S3SYNC_FS_MMAP_FILE")
	if p == "" {
		return // only does something as the child of TestRecords
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, err)
	mem, err := unix.Mmap(int(f.Fd()), 0, 11, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	must(t, err)
	copy(mem, "HELLO")
	must(t, unix.Msync(mem, unix.MS_SYNC))
	must(t, unix.Munmap(mem))
	must(t, f.Close())
}
