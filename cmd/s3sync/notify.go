package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// The sd_notify protocol (systemd's sd_notify(3)): a service started with
// NOTIFY_SOCKET in its environment sends newline-separated KEY=VALUE
// datagrams to that unix socket. systemd's Type=notify units wait for
// READY=1, and so does mount.s3sync (fstab_start.go). A name starting with '@'
// is an abstract socket; Go's net package maps the '@' to the leading NUL.

// notifyReady tells whoever started the mount that it is serving and the
// drain is running.
func notifyReady(log *slog.Logger, mountpoint, remoteURL string) {
	state := fmt.Sprintf("READY=1\nSTATUS=Mirroring %s to %s\nMAINPID=%d", mountpoint, remoteURL, os.Getpid())
	if err := sdNotify(state); err != nil {
		log.Warn("could not tell the service manager the mount is ready", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
		return
	}
	startWatchdog(mountpoint)
}

// notifyStopping tells it the mount is going away, so systemd does not
// take the time spent draining for a hang. mount.s3sync stops listening
// once the mount is ready: no one there is no fault.
func notifyStopping(log *slog.Logger) {
	stopWatchdog()
	err := sdNotify("STOPPING=1\nSTATUS=Stopping: unmounting, sending what is pending")
	if err != nil && !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ENOENT) {
		log.Warn("could not tell the service manager the mount is stopping", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	}
}

func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	return sendNotify(addr, state)
}

func sendNotify(addr, state string) error {
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("NOTIFY_SOCKET %q: only unix sockets (a path or @abstract) are supported", addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// watchdogStop ends the pings of startWatchdog; nil when none run.
var watchdogStop atomic.Pointer[chan struct{}]

// startWatchdog sends WATCHDOG=1 every half WATCHDOG_USEC (systemd's
// WatchdogSec=) while the mountpoint answers statfs: a FUSE server that
// no longer serves stops the pings, and systemd restarts the mount, whose
// start clears the dead mountpoint.
func startWatchdog(mountpoint string) {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return
	}
	stop := make(chan struct{})
	watchdogStop.Store(&stop)
	go func() {
		interval := time.Duration(usec) * time.Microsecond / 2
		var probing atomic.Bool
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if mountAnswers(mountpoint, interval, &probing) {
				sdNotify("WATCHDOG=1")
			}
		}
	}()
}

// statfsProbeName is the argv[0] the watchdog gives its probe
// (mountAnswers): s3sync started so statfs-es its one argument, exits 0 if
// it answered, and does nothing else. Only an argv[0] chosen at exec says
// so, never something a process inherits (an environment variable would
// turn every s3sync command run below a mount into a silent exit 0), and
// the probe can do no harm to whoever asks for it by that name.
const statfsProbeName = "s3sync-statfs-probe"

// runStatfsProbe exits, as the probe, when args is a probe's command
// line; otherwise it returns and s3sync runs as called.
func runStatfsProbe(args []string) {
	if len(args) != 2 || args[0] != statfsProbeName {
		return
	}
	var st syscall.Statfs_t
	if syscall.Statfs(args[1], &st) != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// mountAnswers reports whether the mountpoint answers statfs within
// timeout. It asks from a child process, never from the server itself: a
// thread of the server waiting on its own mount can, if the server is
// killed while that request is being served, never return, and the
// process never finish dying, with the mount hung. A child holds nothing
// of the connection (/dev/fuse is close-on-exec), so it is freed once the
// server is gone. While an earlier probe still hangs, no other starts.
func mountAnswers(mountpoint string, timeout time.Duration, probing *atomic.Bool) bool {
	if !probing.CompareAndSwap(false, true) {
		return false
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{statfsProbeName, mountpoint}
	cmd.Env = []string{} // it needs none
	if err := cmd.Start(); err != nil {
		probing.Store(false)
		return false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); probing.Store(false) }()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(timeout):
		return false
	}
}

func stopWatchdog() {
	if stop := watchdogStop.Swap(nil); stop != nil {
		close(*stop)
	}
}
