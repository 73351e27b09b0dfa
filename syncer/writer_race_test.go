package syncer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// userfaultfd(2), as linux/userfaultfd.h has it.
const (
	uffdAPI           = 0xAA
	uffdioAPI         = 0xc018aa3f // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister    = 0xc020aa00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioCopy        = 0xc028aa03 // _IOWR(0xAA, 0x03, struct uffdio_copy)
	uffdRegisterMiss  = 1
	uffdEventPagefalt = 0x12
)

// stalledWrite starts a pwrite(2) of data to f at offset 0 whose source
// buffer's second page is not there yet (userfaultfd): the kernel updates
// mtime and copies the first page into the file, then waits for the second
// while holding the file's lock, as a writer preempted half-way does. It
// returns once the write is stalled so; release lets it finish, and the
// returned channel gives the write's result.
func stalledWrite(t *testing.T, f *os.File, data []byte) (release func(), done <-chan error) {
	t.Helper()
	page := os.Getpagesize()
	if len(data) != 2*page {
		t.Fatalf("stalledWrite writes two pages, got %d bytes", len(data))
	}
	uffd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC, 0, 0)
	if errno != 0 {
		t.Fatalf("userfaultfd: %v", errno)
	}
	t.Cleanup(func() { unix.Close(int(uffd)) })
	api := [3]uint64{uffdAPI, 0, 0}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uffd, uffdioAPI, uintptr(unsafe.Pointer(&api))); errno != 0 {
		t.Fatalf("UFFDIO_API: %v", errno)
	}
	buf, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf[:page], data[:page])
	second := uintptr(unsafe.Pointer(&buf[page]))
	reg := [4]uint64{uint64(second), uint64(page), uffdRegisterMiss, 0}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uffd, uffdioRegister, uintptr(unsafe.Pointer(&reg))); errno != 0 {
		t.Fatalf("UFFDIO_REGISTER: %v", errno)
	}
	result := make(chan error, 1)
	go func() {
		_, err := unix.Pwrite(int(f.Fd()), buf, 0)
		result <- err
	}()
	// The fault's message says the write is stalled on the second page.
	var msg [32]byte
	if _, err := unix.Read(int(uffd), msg[:]); err != nil {
		t.Fatalf("read userfaultfd: %v", err)
	}
	if msg[0] != uffdEventPagefalt {
		t.Fatalf("userfaultfd event %#x, want a page fault", msg[0])
	}
	src := make([]byte, page)
	copy(src, data[page:])
	var released bool
	release = func() {
		if released {
			return
		}
		released = true
		cp := [5]uint64{uint64(second), uint64(uintptr(unsafe.Pointer(&src[0]))), uint64(page), 0, 0}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uffd, uffdioCopy, uintptr(unsafe.Pointer(&cp))); errno != 0 {
			t.Errorf("UFFDIO_COPY: %v", errno)
		}
	}
	t.Cleanup(release)
	return release, result
}

// A write that began before an upload looked at the file, and is still
// copying its bytes while the upload reads, must not be sent half old,
// half new: the file's mtime moved before the upload's first look and not
// again, so comparing looks cannot tell. The upload waits for it instead.
func TestUploadWaitsForAWriteInProgress(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: srv.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	path := filepath.Join(t.TempDir(), "db")
	old, next := bytes.Repeat([]byte{'1'}, 2*page), bytes.Repeat([]byte{'2'}, 2*page)
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	release, wrote := stalledWrite(t, f, next)

	uploaded := make(chan error, 1)
	go func() {
		_, err := UploadFile(context.Background(), c, path, bucket, "db", "")
		uploaded <- err
	}()
	// The write stays stalled until release, so an upload that does not
	// wait for it ends within the time an upload of this file takes
	// (milliseconds); a slower machine could only make this pass without
	// proving anything, never fail wrongly.
	select {
	case err := <-uploaded:
		release()
		body, _ := srv.Get(t, bucket, "db")
		t.Fatalf("the upload did not wait for the write in progress (err %v): the object holds %q… %q…", err, body[:4], body[page:page+4])
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-uploaded; err != nil {
		t.Fatal(err)
	}
	if body, _ := srv.Get(t, bucket, "db"); body != string(next) {
		t.Errorf("the object is not the file as written: %q… %q…", body[:4], body[page:page+4])
	}
}

// Where writes are stamped with the coarse clock (before Linux 6.13), one
// in the same tick as the upload's first look would not move ctime: the
// upload looks again once the file's ctime is behind the clock. Here the
// clock is held on the file's ctime for a few looks.
func TestUploadLooksAfterTheWritesTick(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := statOf(f)
	if err != nil {
		t.Fatal(err)
	}
	defer func(c func() time.Time) { coarseNow = c }(coarseNow)
	looks := 0
	coarseNow = func() time.Time {
		if looks++; looks <= 3 {
			return st.ctime // still the tick the file was written in
		}
		return st.ctime.Add(4 * time.Millisecond)
	}
	if _, err := settledState(f); err != nil {
		t.Fatal(err)
	}
	if looks != 4 {
		t.Errorf("looked at the clock %d times, want 4 (three in the write's tick, then past it)", looks)
	}
	// A ctime that stays ahead of the clock (set back) is taken as it is.
	coarseNow = func() time.Time { return st.ctime.Add(-time.Hour) }
	start := time.Now()
	if _, err := settledState(f); err != nil {
		t.Fatal(err)
	}
	// At least maxTickWait; the upper bound only tells a bounded wait from
	// one that ends by chance, so it is generous for a loaded machine.
	if waited := time.Since(start); waited < maxTickWait || waited > 100*maxTickWait {
		t.Errorf("with the clock behind the file's ctime, waited %v, want about %v", waited, maxTickWait)
	}
}
