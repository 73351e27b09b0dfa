package main

import (
	"errors"
	"log/slog"
	"os/exec"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
)

// unmount retries while files are still open, then detaches lazily so the
// process can exit.
func unmount(srv *fuse.Server, mountpoint string, unmounted <-chan struct{}, log *slog.Logger) {
	select {
	case <-unmounted:
		return
	default:
	}
	for i := 0; i < 20; i++ {
		if err := srv.Unmount(); err == nil {
			<-unmounted
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log.Warn("mount busy; detaching it lazily", "mountpoint", mountpoint)
	detach(mountpoint)
	select {
	case <-unmounted:
	case <-time.After(5 * time.Second):
	}
}

// clearStaleMount detaches a mount left by a killed s3sync, whose
// mountpoint answers ENOTCONN.
func clearStaleMount(mountpoint string, log *slog.Logger) {
	err := statSettled(mountpoint)
	if !errors.Is(err, syscall.ENOTCONN) {
		return
	}
	log.Info("clearing a stale mount left by an earlier s3sync", "mountpoint", mountpoint)
	detach(mountpoint)
}

// detach unmounts lazily: directly as root, else through fusermount3.
func detach(mountpoint string) {
	if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
		exec.Command("fusermount3", "-uz", mountpoint).Run()
	}
}
