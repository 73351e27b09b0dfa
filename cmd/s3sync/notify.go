package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
)

// The sd_notify protocol (systemd's sd_notify(3)): a service started with
// NOTIFY_SOCKET in its environment sends newline-separated KEY=VALUE
// datagrams to that unix socket. systemd's Type=notify units wait for
// READY=1, and so does mount.s3sync (fstab.go). A name starting with '@'
// is an abstract socket; Go's net package maps the '@' to the leading NUL.

// notifyReady tells whoever started the mount that it is serving and the
// drain is running.
func notifyReady(log *slog.Logger, mountpoint, remoteURL string) {
	sdNotify(log, fmt.Sprintf("READY=1\nSTATUS=Mirroring %s to %s\nMAINPID=%d", mountpoint, remoteURL, os.Getpid()))
}

// notifyStopping tells it the mount is going away, so systemd does not
// take the time spent draining for a hang.
func notifyStopping(log *slog.Logger) {
	sdNotify(log, "STOPPING=1\nSTATUS=Stopping: unmounting, sending what is pending")
}

func sdNotify(log *slog.Logger, state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if err := sendNotify(addr, state); err != nil {
		log.Warn("could not tell the service manager the mount's state", "socket", addr, "state", strings.SplitN(state, "\n", 2)[0], "err", err)
	}
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
