package state

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/testenv"
)

// A mount's start-up reads the state database through the page cache:
// after Warm every page of the file is resident, even when none was.
func TestWarmLoadsTheStateFile(t *testing.T) {
	s := openTest(t)
	j := s.Journal()
	for i := range 20000 {
		j.Changed(fmt.Sprintf("dir%02d/file%06d", i%50, i))
	}
	if err := j.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(s.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	resident := func() (in, all int) {
		m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		for _, v := range vec {
			in += int(v & 1)
		}
		return in, len(vec)
	}
	// FADV_DONTNEED drops clean pages only.
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	if in, all := resident(); in == all {
		testenv.CannotRun(t, "the kernel kept all %d pages of the file after FADV_DONTNEED; cannot tell", all)
	}
	if err := s.Warm(); err != nil {
		t.Fatal(err)
	}
	if in, all := resident(); in < all {
		t.Errorf("after Warm %d of the state file's %d pages are in memory; want all", in, all)
	}
}
