package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/s3sync/s3sync/remote"
)

// mount.s3sync's second half (the first, fstab.go, parses what mount(8)
// gives it): `s3sync mount` started in a session of its own, its READY=1
// awaited, or its last error line repeated.

// start runs `s3sync mount` in the background and waits until it is
// ready, or fails.
func (hc *helperCall) start(ctx context.Context) error {
	loginEnvironment()
	stateDir := hc.stateDir
	if stateDir == "" {
		loc, _ := remote.ParseURL(hc.remote) // checked by parseHelperArgs
		stateDir = defaultStateDir(hc.workdir, loc.String())
	}
	logf, logPath, err := openHelperLog(stateDir)
	if err != nil {
		return err
	}
	defer logf.Close()
	ln, addr, err := listenNotify()
	if err != nil {
		return fmt.Errorf("readiness socket: %v", err)
	}
	defer ln.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := append([]string{"mount"}, hc.flags...)
	args = append(args, "--", hc.workdir, hc.mountpoint, hc.remote)
	cmd := exec.Command(self, args...)
	cmd.Args[0] = "s3sync" // not mount.s3sync, whatever the file is called
	cmd.Env = append(withoutEnv(os.Environ(), "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"), "NOTIFY_SOCKET="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Each key goes through a pipe of its own, read by the mount at start
	// (--sse-c-key=fd://3): a pipe's content is nowhere another user can
	// read, unlike argv, and gone once read, unlike the environment.
	for _, key := range hc.keys {
		r, err := keyPipe(key)
		if err != nil {
			return fmt.Errorf("pass the key to s3sync mount: %v", err)
		}
		defer r.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, r)
	}
	// A daemon's working directory would keep mount(8)'s busy for good.
	cmd.Dir = "/"
	// Its own session: mount(8)'s terminal and process group may go away.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	slog.New(slog.NewTextHandler(logf, nil)).Info(mountHelperName+": starting s3sync mount",
		"remote", hc.remote, "mountpoint", hc.mountpoint, "workdir", hc.workdir, "flags", strings.Join(hc.flags, " "))
	from, _ := logf.Seek(0, io.SeekEnd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start s3sync mount: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ready := make(chan struct{})
	go waitReady(ln, cmd.Process.Pid, ready)

	timer := time.NewTimer(hc.readyTimeout)
	defer timer.Stop()
	select {
	case <-ready:
		if hc.verbose {
			fmt.Printf("%s: %s mounted on %s (pid %d, log %s)\n", mountHelperName, hc.remote, hc.mountpoint, cmd.Process.Pid, logPath)
		}
		return nil
	case err := <-exited:
		return fmt.Errorf("%s (s3sync mount: %v; log: %s)", childError(logPath, from), err, logPath)
	case <-timer.C:
		select {
		case <-ready: // both at once: it is mounted, keep it
			return nil
		default:
		}
		stopChild(cmd, exited, hc.mountpoint)
		return fmt.Errorf("s3sync mount was not ready within %v and was stopped (the first scan of a large WORKDIR can take longer: raise ready-timeout=, and under systemd x-systemd.mount-timeout=); log: %s", hc.readyTimeout, logPath)
	case <-ctx.Done():
		stopChild(cmd, exited, hc.mountpoint)
		return fmt.Errorf("interrupted; s3sync mount stopped (log: %s)", logPath)
	}
}

// keyPipe returns the read end of a pipe holding key, whose write end is
// closed: the reader gets the key, then EOF.
func keyPipe(key []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = w.Write(key) // a pipe holds 64 KiB: a key never blocks
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// loginEnvironment gives the mount what a login shell would: mount(8)
// drops HOME and PATH from a helper's environment, and without HOME the
// default state dir and ~/.aws would not be the ones `s3sync` finds when
// run by the same user.
func loginEnvironment() {
	if os.Getenv("HOME") == "" {
		if u, err := user.Current(); err == nil && u.HomeDir != "" {
			os.Setenv("HOME", u.HomeDir)
		}
	}
	if os.Getenv("PATH") == "" {
		os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
}

// openHelperLog opens stateDir/mount.log for the mount's output, making
// the state dir (private, as s3sync mount makes it) if need be.
func openHelperLog(stateDir string) (*os.File, string, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("state dir for the mount's log: %v", err)
	}
	path := filepath.Join(stateDir, helperLogName)
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && st.Size() > helperLogMax {
		os.Rename(path, path+".1")
	}
	f, _, err := openPrivate(path, os.O_WRONLY|os.O_APPEND, false)
	if err != nil {
		return nil, "", fmt.Errorf("the mount's log: %v", err)
	}
	return f, path, nil
}

// listenNotify opens an abstract unixgram socket for sd_notify messages,
// with the sender's credentials attached so only the child is believed.
func listenNotify() (*net.UnixConn, string, error) {
	var b [8]byte
	rand.Read(b[:])
	addr := fmt.Sprintf("@s3sync-mount-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, "", err
	}
	raw, err := ln.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
		})
		if cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		ln.Close()
		return nil, "", err
	}
	return ln, addr, nil
}

// waitReady closes ready when process pid sends READY=1.
func waitReady(ln *net.UnixConn, pid int, ready chan<- struct{}) {
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		n, oobn, _, _, err := ln.ReadMsgUnix(buf, oob)
		if err != nil {
			return // closed: the helper is done
		}
		if senderPID(oob[:oobn]) != pid {
			continue
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" {
				close(ready)
				return
			}
		}
	}
}

func senderPID(oob []byte) int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for i := range msgs {
		if cred, err := syscall.ParseUnixCredentials(&msgs[i]); err == nil {
			return int(cred.Pid)
		}
	}
	return -1
}

// stopChild ends a mount that did not get ready, and leaves nothing
// mounted.
func stopChild(cmd *exec.Cmd, exited <-chan error, mountpoint string) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	clearStaleMount(mountpoint, slog.New(slog.DiscardHandler))
}

// childError is the line that says why the mount failed: what s3sync
// printed as its error ("s3sync: …"), else its last error log line, else
// its last line.
func childError(logPath string, from int64) string {
	f, err := os.Open(logPath)
	if err != nil {
		return "s3sync mount failed"
	}
	defer f.Close()
	f.Seek(from, io.SeekStart)
	var last, lastErr, final string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "s3sync: "):
			final = strings.TrimPrefix(line, "s3sync: ")
		case strings.Contains(line, "level=ERROR"):
			lastErr = line
		}
		if line != "" && !strings.HasPrefix(line, "Run 's3sync --help'") {
			last = line
		}
	}
	switch {
	case final != "":
		return final
	case lastErr != "":
		return lastErr
	case last != "":
		return last
	}
	return "s3sync mount failed"
}

// withoutEnv drops the named variables from env.
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || name == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
