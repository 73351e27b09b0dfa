// Copyright 2026 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fuse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/third_party/go-fuse/fs"
	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"golang.org/x/sys/unix"
)

const enableURingParam = "/sys/module/fuse/parameters/enable_uring"

// uringReady is why io_uring tests cannot run here, or "" if they can.
var uringReady string

func TestMain(m *testing.M) {
	release := enableURing()
	code := m.Run()
	release()
	os.Exit(code)
}

// enableURing turns on the fuse module's enable_uring for as long as
// any process that called it runs. The value it found is kept in a
// lock file; the last process out (the one that gets the exclusive
// lock) puts it back.
func enableURing() (release func()) {
	if os.Geteuid() != 0 {
		uringReady = "needs root"
		return func() {}
	}
	cur, err := os.ReadFile(enableURingParam)
	if err != nil {
		uringReady = "kernel without FUSE over io_uring (no " + enableURingParam + ")"
		return func() {}
	}
	lock, err := os.OpenFile("/run/fuse-enable-uring.lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		uringReady = err.Error()
		return func() {}
	}
	// Holders of the shared lock rely on the parameter staying Y; the
	// one that changes it takes the lock exclusively to do so.
	for deadline := time.Now().Add(time.Minute); ; {
		unix.Flock(int(lock.Fd()), unix.LOCK_SH)
		cur, _ = os.ReadFile(enableURingParam)
		if strings.TrimSpace(string(cur)) == "Y" {
			break
		}
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if err := os.WriteFile(enableURingParam, []byte("Y"), 0); err != nil {
				uringReady = "cannot enable io_uring: " + err.Error()
			}
			lock.Truncate(0)
			lock.WriteAt(cur, 0)
			unix.Flock(int(lock.Fd()), unix.LOCK_SH)
			break
		}
		unix.Flock(int(lock.Fd()), unix.LOCK_UN)
		if time.Now().After(deadline) {
			uringReady = "could not enable io_uring: lock /run/fuse-enable-uring.lock busy"
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		defer lock.Close()
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			return // someone else still needs it
		}
		orig := make([]byte, 8)
		n, _ := lock.ReadAt(orig, 0)
		if n > 0 {
			os.WriteFile(enableURingParam, orig[:n], 0)
			lock.Truncate(0)
		}
	}
}

func needURing(t *testing.T) {
	t.Helper()
	if uringReady != "" {
		// CI runs as root on a kernel with it: a skip there would hide
		// a transport that no longer works.
		if os.Getenv("CI") != "" {
			t.Fatal("FUSE over io_uring unavailable in CI: " + uringReady)
		}
		t.Skip("FUSE over io_uring unavailable: " + uringReady)
	}
}

// mountURing mounts a loopback of a new directory over io_uring and
// checks that io_uring is in use.
func mountURing(t *testing.T, root fs.InodeEmbedder, mo fuse.MountOptions) (*fuse.Server, string) {
	t.Helper()
	needURing(t)
	mnt := t.TempDir()
	mo.EnableIoUring = true
	mo.Debug = mo.Debug || testing.Verbose() && os.Getenv("FUSE_DEBUG") != ""
	srv, err := fs.Mount(mnt, root, &fs.Options{MountOptions: mo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	if err := srv.IoUringErr(); err != nil {
		t.Fatalf("mounted, but not over io_uring: %v", err)
	}
	return srv, mnt
}

func loopback(t *testing.T) (fs.InodeEmbedder, string) {
	dir := t.TempDir()
	root, err := fs.NewLoopbackRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return root, dir
}

// TestIoUringOps runs every request type a loopback mount uses over
// io_uring, with and without passthrough, and checks each one's
// result in the mount and in the backing directory.
func TestIoUringOps(t *testing.T) {
	for _, c := range []struct {
		name string
		mo   fuse.MountOptions
	}{
		{"passthrough", fuse.MountOptions{}},
		{"no-passthrough", fuse.MountOptions{DisabledCapabilities: fuse.CAP_PASSTHROUGH}},
		{"no-readdirplus", fuse.MountOptions{DisableReadDirPlus: true, DisabledCapabilities: fuse.CAP_PASSTHROUGH}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, back := loopback(t)
			srv, mnt := mountURing(t, root, c.mo)
			before := fuse.IoUringServed(srv)
			p := func(n string) string { return filepath.Join(mnt, n) }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}

			// create, write, flush, fsync, release
			f, err := os.OpenFile(p("f"), os.O_CREATE|os.O_RDWR, 0o640)
			must(err)
			data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB: several WRITEs
			_, err = f.Write(data)
			must(err)
			must(f.Sync())
			// read back through the open handle
			got := make([]byte, len(data))
			_, err = f.ReadAt(got, 0)
			must(err)
			if !bytes.Equal(got, data) {
				t.Fatal("read back differs")
			}
			must(f.Close())
			// open, read, release
			got, err = os.ReadFile(p("f"))
			must(err)
			if !bytes.Equal(got, data) {
				t.Fatal("read after reopen differs")
			}
			if b, _ := os.ReadFile(filepath.Join(back, "f")); !bytes.Equal(b, data) {
				t.Fatal("backing file differs")
			}
			// setattr: chmod, truncate, utimes
			must(os.Chmod(p("f"), 0o600))
			must(os.Truncate(p("f"), 10))
			mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
			must(os.Chtimes(p("f"), mt, mt))
			// getattr
			st, err := os.Stat(p("f"))
			must(err)
			if st.Mode().Perm() != 0o600 || st.Size() != 10 || !st.ModTime().Equal(mt) {
				t.Fatalf("stat: %v %d %v", st.Mode(), st.Size(), st.ModTime())
			}
			// mkdir, symlink, readlink, link, rename, unlink, rmdir
			must(os.Mkdir(p("d"), 0o755))
			must(os.Symlink("../f", p("d/l")))
			if tgt, err := os.Readlink(p("d/l")); err != nil || tgt != "../f" {
				t.Fatalf("readlink: %q %v", tgt, err)
			}
			must(os.Link(p("f"), p("d/hard")))
			if st, _ := os.Stat(p("f")); st.Sys().(*syscall.Stat_t).Nlink != 2 {
				t.Fatal("link count not 2")
			}
			must(os.Rename(p("d/hard"), p("d/moved")))
			// readdir(plus)
			ents, err := os.ReadDir(p("d"))
			must(err)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if strings.Join(names, ",") != "l,moved" {
				t.Fatalf("readdir: %v", names)
			}
			// many entries: several READDIR(PLUS) calls
			for i := 0; i < 300; i++ {
				must(os.WriteFile(p(fmt.Sprintf("d/%03d-a-rather-long-name-to-fill-pages", i)), nil, 0o644))
			}
			ents, err = os.ReadDir(p("d"))
			must(err)
			if len(ents) != 302 {
				t.Fatalf("readdir: %d entries, want 302", len(ents))
			}
			must(os.Remove(p("d/moved")))
			must(os.Remove(p("d/l")))
			for i := 0; i < 300; i++ {
				must(os.Remove(p(fmt.Sprintf("d/%03d-a-rather-long-name-to-fill-pages", i))))
			}
			must(os.Remove(p("d")))
			if _, err := os.Lstat(filepath.Join(back, "d")); !os.IsNotExist(err) {
				t.Fatalf("rmdir did not reach the backing dir: %v", err)
			}
			// statfs
			var sfs syscall.Statfs_t
			must(syscall.Statfs(mnt, &sfs))
			if sfs.Blocks == 0 {
				t.Fatal("statfs: no blocks")
			}
			// xattrs
			if err := unix.Setxattr(p("f"), "user.k", []byte("v"), 0); err == nil {
				buf := make([]byte, 16)
				n, err := unix.Getxattr(p("f"), "user.k", buf)
				if err != nil || string(buf[:n]) != "v" {
					t.Fatalf("getxattr: %q %v", buf[:n], err)
				}
				n, err = unix.Listxattr(p("f"), buf)
				if err != nil || !strings.Contains(string(buf[:n]), "user.k") {
					t.Fatalf("listxattr: %q %v", buf[:n], err)
				}
				must(unix.Removexattr(p("f"), "user.k"))
			} else if !errors.Is(err, syscall.ENOTSUP) {
				t.Fatalf("setxattr: %v", err)
			}
			// lookup of a missing name
			if _, err := os.Stat(p("missing")); !os.IsNotExist(err) {
				t.Fatalf("stat missing: %v", err)
			}
			must(os.Remove(p("f")))

			if n := fuse.IoUringServed(srv) - before; n < 50 {
				t.Fatalf("only %d requests were served over io_uring", n)
			}
		})
	}
}

// TestIoUringConcurrent has many goroutines create, write, read and
// remove files at once, which spreads requests over every queue and
// keeps several in flight per queue.
func TestIoUringConcurrent(t *testing.T) {
	root, _ := loopback(t)
	_, mnt := mountURing(t, root, fuse.MountOptions{DisabledCapabilities: fuse.CAP_PASSTHROUGH})
	concurrentLoad(t, mnt, 16, 50)
}

func concurrentLoad(t *testing.T, mnt string, workers, files int) {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < files; i++ {
				name := filepath.Join(mnt, fmt.Sprintf("w%d-%d", w, i))
				want := bytes.Repeat([]byte{byte(w), byte(i)}, 3000+i)
				if err := os.WriteFile(name, want, 0o644); err != nil {
					errs <- err
					return
				}
				got, err := os.ReadFile(name)
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("%s: read back %d bytes, %v", name, len(got), err)
					return
				}
				if err := os.Remove(name); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestIoUringFewCPUs serves every queue from one CPU with one Go
// processor, with one thread per queue (the default: reads and writes
// handed to goroutines) and with four, in a child process started
// under taskset.
func TestIoUringFewCPUs(t *testing.T) {
	if n := os.Getenv("FUSE_URING_FEW_CPUS"); n != "" {
		runtime.GOMAXPROCS(1)
		threads, _ := strconv.Atoi(n)
		root, _ := loopback(t)
		_, mnt := mountURing(t, root, fuse.MountOptions{
			DisabledCapabilities:   fuse.CAP_PASSTHROUGH,
			IoUringThreadsPerQueue: threads,
		})
		concurrentLoad(t, mnt, 8, 20)
		return
	}
	needURing(t)
	taskset := needTaskset(t)
	for _, threads := range []string{"1", "4"} {
		cmd := exec.Command(taskset, "-c", "0", os.Args[0], "-test.run=^TestIoUringFewCPUs$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FUSE_URING_FEW_CPUS="+threads)
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("PASS")) {
			t.Fatalf("child on one CPU, %s threads per queue: %v\n%s", threads, err, out)
		}
	}
}

func needTaskset(t *testing.T) string {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Fatal("taskset (util-linux) is needed: ", err)
	}
	return taskset
}

// TestIoUringWaitingReadHoldsNoOneUp: with one thread per queue (the
// default), a READ waiting in the filesystem does not hold up the other
// requests from its CPU: it is served on a goroutine of its own.
func TestIoUringWaitingReadHoldsNoOneUp(t *testing.T) {
	r := newBlockingRoot()
	_, mnt := mountURing(t, r, fuse.MountOptions{})
	taskset := needTaskset(t)
	dd := exec.Command(taskset, "-c", "0", "dd", "if="+filepath.Join(mnt, "block"), "of=/dev/null", "bs=4096", "count=1")
	if err := dd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.reading:
	case <-time.After(30 * time.Second):
		dd.Process.Kill()
		t.Fatal("READ never arrived")
	}
	defer func() {
		dd.Process.Signal(syscall.SIGTERM)
		<-r.readErr
		dd.Wait()
	}()
	// From the same CPU, while the READ waits: LOOKUPs answered (ENOENT).
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, taskset, "-c", "0", "stat", filepath.Join(mnt, fmt.Sprintf("absent-%d", i))).CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("stat from the READ's CPU got no answer while the READ waited: %s", out)
		}
		if err == nil || !bytes.Contains(out, []byte("No such file")) {
			t.Fatalf("stat of an absent name: %v, %s; want ENOENT", err, out)
		}
	}
}

// blockingRoot is a directory whose file "block" answers READ only
// when the read is interrupted, and whose lookups of "wait-*" block
// until release is closed.
type blockingRoot struct {
	fs.Inode
	reading chan struct{} // a READ arrived
	readErr chan error    // how it ended
	lookups chan string   // a blocking LOOKUP arrived
	release chan struct{}
}

var _ = (fs.NodeLookuper)((*blockingRoot)(nil))

func (r *blockingRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if name == "block" {
		return r.NewInode(ctx, &blockingFile{r: r}, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	if strings.HasPrefix(name, "wait-") {
		r.lookups <- name
		<-r.release
		return nil, syscall.ENOENT
	}
	return nil, syscall.ENOENT
}

type blockingFile struct {
	fs.Inode
	r *blockingRoot
}

var _ = (fs.NodeOpener)((*blockingFile)(nil))
var _ = (fs.NodeReader)((*blockingFile)(nil))
var _ = (fs.NodeGetattrer)((*blockingFile)(nil))

func (f *blockingFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o444
	out.Size = 1 << 20
	return 0
}

func (f *blockingFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (f *blockingFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.r.reading <- struct{}{}
	select {
	case <-ctx.Done():
		f.r.readErr <- ctx.Err()
		return nil, syscall.EINTR
	case <-time.After(time.Minute):
		f.r.readErr <- errors.New("READ was never interrupted")
		return fuse.ReadResultData(dest[:1]), 0
	}
}

func newBlockingRoot() *blockingRoot {
	return &blockingRoot{
		reading: make(chan struct{}, 1),
		readErr: make(chan error, 1),
		lookups: make(chan string, 16),
		release: make(chan struct{}),
	}
}

// TestIoUringInterrupt: a READ blocked in the server is interrupted
// when its caller gets a signal (INTERRUPT comes over /dev/fuse, the
// answer goes back over io_uring), and the mount keeps working.
func TestIoUringInterrupt(t *testing.T) {
	r := newBlockingRoot()
	_, mnt := mountURing(t, r, fuse.MountOptions{})
	cmd := exec.Command("dd", "if="+filepath.Join(mnt, "block"), "of=/dev/null", "bs=4096", "count=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.reading:
	case <-time.After(30 * time.Second):
		t.Fatal("READ never arrived")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.readErr:
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("READ ended with %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("READ was not interrupted")
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("dd succeeded; it should have died of SIGTERM")
	}
	// The thread that served the READ serves again.
	for i := 0; i < 20; i++ {
		if _, err := os.Stat(filepath.Join(mnt, "block")); err != nil {
			t.Fatalf("after interrupt: %v", err)
		}
	}
}

// TestIoUringUnmountInFlight unmounts while requests are blocked in
// the server: the callers get an error instead of hanging, and every
// serving thread ends.
func TestIoUringUnmountInFlight(t *testing.T) {
	for _, how := range []string{"abort", "lazy"} {
		t.Run(how, func(t *testing.T) {
			needURing(t)
			r := newBlockingRoot()
			mnt := t.TempDir()
			// Each blocked request holds a thread; all of them may come
			// from one CPU, so one queue must have a thread for each.
			const n = 4
			srv, err := fs.Mount(mnt, r, &fs.Options{MountOptions: fuse.MountOptions{
				EnableIoUring:          true,
				IoUringThreadsPerQueue: n + 1,
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.IoUringErr(); err != nil {
				srv.Unmount()
				t.Fatal(err)
			}
			var releaseOnce sync.Once
			unblock := func() { releaseOnce.Do(func() { close(r.release) }) }
			t.Cleanup(func() {
				unblock()
				syscall.Unmount(mnt, unix.MNT_DETACH)
			})
			done := make(chan error, n)
			for i := 0; i < n; i++ {
				go func(i int) {
					_, err := os.Stat(filepath.Join(mnt, fmt.Sprintf("wait-%d", i)))
					done <- err
				}(i)
			}
			for i := 0; i < n; i++ {
				select {
				case <-r.lookups:
				case <-time.After(30 * time.Second):
					t.Fatalf("only %d of %d LOOKUPs arrived", i, n)
				}
			}
			var st syscall.Stat_t
			if err := syscall.Stat(mnt, &st); err != nil {
				t.Fatal(err)
			}
			switch how {
			case "abort":
				ctl := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
				if _, err := os.Stat(ctl); os.IsNotExist(err) {
					// fusectl is not mounted here by default
					if err := syscall.Mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, ""); err != nil {
						t.Fatalf("mount fusectl: %v", err)
					}
				}
				if err := os.WriteFile(ctl, []byte("1"), 0); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if err := <-done; err == nil {
						t.Error("stat of a blocked name succeeded after abort")
					}
				}
				unblock()
				syscall.Unmount(mnt, unix.MNT_DETACH)
			case "lazy":
				if err := syscall.Unmount(mnt, unix.MNT_DETACH); err != nil {
					t.Fatal(err)
				}
				unblock()
				for i := 0; i < n; i++ {
					if err := <-done; !os.IsNotExist(err) {
						t.Errorf("stat after lazy unmount: %v, want ENOENT from the server", err)
					}
				}
			}
			waited := make(chan struct{})
			go func() { srv.Wait(); close(waited) }()
			select {
			case <-waited:
			case <-time.After(60 * time.Second):
				t.Fatal("server did not stop after unmount")
			}
		})
	}
}

// TestIoUringFallback: when the INIT reply cannot offer io_uring, the
// mount works over /dev/fuse and IoUringErr says why.
func TestIoUringFallback(t *testing.T) {
	root, _ := loopback(t)
	mnt := t.TempDir()
	srv, err := fs.Mount(mnt, root, &fs.Options{MountOptions: fuse.MountOptions{
		EnableIoUring:        true,
		DisabledCapabilities: fuse.CAP_OVER_IO_URING,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()
	if srv.IoUringErr() == nil {
		t.Fatal("IoUringErr is nil, but io_uring was disabled")
	}
	if err := os.WriteFile(filepath.Join(mnt, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := fuse.IoUringServed(srv); n != 0 {
		t.Fatalf("%d requests served over io_uring", n)
	}
}
