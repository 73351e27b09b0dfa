package fs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestFsyncFailsWhenRecorderCannotSync: fsync must not claim durability the
// journal could not give.
func TestFsyncFailsWhenRecorderCannotSync(t *testing.T) {
	tm := newMount(t, Options{})
	tm.rec.mu.Lock()
	tm.rec.syncErr = errors.New("disk full")
	tm.rec.mu.Unlock()
	f, err := os.Create(tm.path("f"))
	must(t, err)
	defer f.Close()
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync with a failing recorder: %v, want EIO", err)
	}
}

// TestPassthrough reports whether the kernel does this mount's I/O itself.
// Where the kernel offers FUSE passthrough to us (6.9+, root), it must be in
// use: reads and writes then never reach this process.
func TestPassthrough(t *testing.T) {
	tm := newMount(t, Options{})
	write(t, tm.orig("f"), "from workdir")
	wantContent(t, tm.path("f"), "from workdir")
	write(t, tm.path("g"), "through the mount")
	wantContent(t, tm.orig("g"), "through the mount")
	tm.quiesce(t)
	reads, writes := tm.m.reads.Load(), tm.m.writes.Load()
	active := reads == 0 && writes == 0
	t.Logf("kernel offers passthrough: %v; passthrough active: %v (READs served: %d, WRITEs served: %d)",
		tm.m.kernelPassthrough, active, reads, writes)
	if tm.m.kernelPassthrough && !active {
		t.Errorf("kernel offers passthrough but %d reads and %d writes came through us", reads, writes)
	}
}

// TestRenameRacingFlush: a file renamed while still open is reported under
// its new name when it is closed, after the rename.
func TestRenameRacingFlush(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tm := newMount(t, mode.opts)
			f, err := os.Create(tm.path("a"))
			must(t, err)
			_, err = f.WriteString("x")
			must(t, err)
			must(t, os.Rename(tm.path("a"), tm.path("b")))
			must(t, f.Close())
			got := tm.quiesce(t)
			want := []call{renamed("a", "b", false), changed("b")}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("recorded %v, want %v", got, want)
			}
		})
	}
}

// A file created write-only (as tar, cp and editors create theirs) holds one
// descriptor in WORKDIR while open, not a second one reopened read-write for
// passthrough: a mount serving many open files stays twice as far from the
// descriptor limit, and an untar does not reopen every file through /proc.
func TestCreateWriteOnlyHoldsOneFd(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tm := newMount(t, mode.opts)
			f, err := os.OpenFile(tm.path("f"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
			must(t, err)
			_, err = f.WriteString("written write-only")
			must(t, err)
			n := 0
			for _, fd := range ourFds(t, tm) {
				if strings.HasSuffix(fd, "="+tm.orig("f")) {
					n++
				}
			}
			must(t, f.Close())
			if n != 1 {
				t.Errorf("the mount held %d descriptors on a file created write-only, want 1", n)
			}
			wantContent(t, tm.orig("f"), "written write-only")
			if st, err := os.Stat(tm.orig("f")); err != nil || st.Mode().Perm() != 0o444 {
				t.Errorf("WORKDIR file: %v, %v; want mode 0444", st, err)
			}
			tm.quiesce(t)
		})
	}
}

// close(2) costs no round trip to the server: the first FLUSH is answered
// ENOSYS and the kernel sends none after it, while each file written and
// closed is still recorded once (at its RELEASE).
func TestCloseSendsNoFlush(t *testing.T) {
	for _, mode := range ioModes {
		t.Run(mode.name, func(t *testing.T) {
			tm := newMount(t, mode.opts)
			var want []call
			for i := range 100 {
				name := fmt.Sprintf("f%d", i)
				write(t, tm.path(name), name)
				want = append(want, changed(name))
			}
			got := tm.quiesce(t)
			slices.SortFunc(got, func(a, b call) int { return strings.Compare(a.path, b.path) })
			slices.SortFunc(want, func(a, b call) int { return strings.Compare(a.path, b.path) })
			if !reflect.DeepEqual(got, want) {
				t.Errorf("recorded %v\nwant one change per file: %v", got, want)
			}
			if n := tm.m.flushes.Load(); n > 1 {
				t.Errorf("%d FLUSH requests for 100 closes, want at most the first", n)
			}
		})
	}
}
