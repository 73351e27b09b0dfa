package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"github.com/spf13/pflag"
)

// ioURingMode is --io-uring: whether the mount is served over
// FUSE-over-io_uring (one system call per request instead of a read and
// a write on /dev/fuse).
type ioURingMode string

const (
	ioURingOff  ioURingMode = "off"
	ioURingAuto ioURingMode = "auto"
	ioURingOn   ioURingMode = "on"
)

// enableURingParam is the fuse module's switch for io_uring (off by
// default in the kernel).
const enableURingParam = "/sys/module/fuse/parameters/enable_uring"

func (m *ioURingMode) register(f *pflag.FlagSet) {
	*m = ioURingOff
	f.Var(m, "io-uring", "serve the mount over FUSE-over-io_uring: off, auto (when the kernel offers it, else /dev/fuse, saying why) or on (fail if the kernel does not offer it); needs Linux 6.14+ with "+enableURingParam+"=Y")
}

func (m *ioURingMode) String() string { return string(*m) }
func (m *ioURingMode) Type() string   { return "off|auto|on" }
func (m *ioURingMode) Set(s string) error {
	switch v := ioURingMode(strings.ToLower(s)); v {
	case ioURingOff, ioURingAuto, ioURingOn:
		*m = v
		return nil
	}
	return fmt.Errorf("want off, auto or on, not %q", s)
}

func (m ioURingMode) enabled() bool { return m == ioURingAuto || m == ioURingOn }

// validate refuses --io-uring=on before anything is mounted when the
// kernel plainly cannot do it.
func (m ioURingMode) validate() error {
	if m != ioURingOn {
		return nil
	}
	if why := kernelIoURing(); why != "" {
		return &exitError{code: exitSkipped, msg: "--io-uring=on: " + why}
	}
	return nil
}

// kernelIoURing says why the kernel will not serve FUSE over io_uring, or
// "" if it should.
func kernelIoURing() string {
	b, err := os.ReadFile(enableURingParam)
	if errors.Is(err, os.ErrNotExist) {
		return "this kernel has no FUSE over io_uring (needs Linux 6.14+ built with CONFIG_FUSE_IO_URING)"
	}
	if err != nil {
		return err.Error()
	}
	if strings.TrimSpace(string(b)) != "Y" {
		return "FUSE over io_uring is switched off in the kernel; as root: echo Y > " + enableURingParam
	}
	return ""
}

// check reports, once mounted, how the mount is served: with on, a mount
// not over io_uring is an error; with auto, one info line says why not.
func (m ioURingMode) check(err error, log *slog.Logger) error {
	switch {
	case m == ioURingOff:
		return nil
	case err == nil:
		log.Info("serving the mount over io_uring")
		roomForRingThreads()
		return nil
	case m == ioURingOn:
		return fmt.Errorf("--io-uring=on: the mount could not be served over io_uring: %v", err)
	}
	why := err.Error()
	if errors.Is(err, fuse.ErrIoUringNotRequested) || strings.Contains(why, "enable_uring") {
		if k := kernelIoURing(); k != "" {
			why = k
		}
	}
	log.Info("serving the mount over /dev/fuse, not io_uring", "why", why)
	return nil
}

// unmountNow takes down a mount that must not stay up.
func unmountNow(srv *fuse.Server, mountpoint string, log *slog.Logger) {
	unmounted := make(chan struct{})
	go func() { srv.Wait(); close(unmounted) }()
	unmount(srv, mountpoint, unmounted, log)
}

// statSettled stats a mount point the way clearStaleMount needs. When the
// server of an io_uring mount dies, the kernel aborts the connection only
// once it has torn down the server's rings, a moment after the process is
// gone: until then a stat may be answered from the attribute cache, and
// requests fail with ECANCELED, or ECONNABORTED when the abort ends them,
// rather than with the ENOTCONN of a dead mount.
// STATFS is never cached, so it waits that moment out.
func statSettled(mountpoint string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var fs syscall.Statfs_t
		err := syscall.Statfs(mountpoint, &fs)
		if err == nil {
			_, err = os.Stat(mountpoint)
		}
		going := errors.Is(err, syscall.ECANCELED) || errors.Is(err, syscall.ECONNABORTED)
		if !going || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roomForRingThreads sets the Go scheduler's processors, over io_uring, to
// two per CPU (unless GOMAXPROCS is set) instead of the minMountProcs that
// serving /dev/fuse wants. A ring thread waits in io_uring_enter without a
// processor and must take one back for each request; there is no read(2)
// hand-over per request to hide, and with eight processors on two CPUs the
// collector's and the journal's threads competed with the ring threads:
// untars over io_uring took 3-13% less time with four than with eight, in
// three interleaved runs on a loaded 2-CPU machine.
func roomForRingThreads() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(2 * runtime.NumCPU())
}
