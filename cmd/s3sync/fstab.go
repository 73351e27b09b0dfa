package main

// mount.s3sync: s3sync called by that name (a symlink, /sbin/mount.s3sync)
// is the helper mount(8) runs for `mount -t s3sync` and fstab lines of
// type s3sync, with the arguments mount(8) gives every helper:
//
//	mount.s3sync s3://BUCKET[/PREFIX] MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE]
//
// mount(8) expects a helper to return once the filesystem is mounted, and
// `s3sync mount` runs until unmounted, so the helper starts it in a
// session of its own and waits for its READY=1 over the sd_notify protocol
// (notify.go), or for it to exit, whose last error line it repeats.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
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

	"github.com/spf13/cobra"

	"github.com/s3sync/s3sync/remote"
)

const mountHelperName = "mount.s3sync"

// Exit statuses as mount(8) documents its own; it passes a helper's on.
const (
	helperUsage  = 1  // incorrect invocation
	helperFailed = 32 // mount failure
)

const (
	defaultReadyTimeout = 2 * time.Minute
	helperLogName       = "mount.log"
	helperLogMax        = 8 << 20 // rotated to mount.log.1 at the next mount when over this
)

// Options for mount(8) and systemd, not for s3sync: meaningless to a FUSE
// mount that is always nosuid,nodev, or already acted on before the helper
// runs (auto, nofail, _netdev order and fail boot; user lets users mount).
var ignoredMountOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "nofail": true, "async": true, "exec": true,
	"user": true, "users": true, "nouser": true, "owner": true, "group": true, "_netdev": true,
	"nosuid": true, "nodev": true,
}

// Options s3sync cannot honour: accepting them silently would promise what
// the mount does not do.
var refusedMountOptions = map[string]string{
	"ro":      "s3sync mounts are read-write (every change is mirrored); remove ro",
	"suid":    "s3sync mounts are always nosuid; remove suid",
	"dev":     "s3sync mounts are always nodev; remove dev",
	"remount": "s3sync mounts cannot be remounted: umount and mount again",
}

// helperCall is one parsed call of mount.s3sync.
type helperCall struct {
	remote       string // the device field: s3://BUCKET[/PREFIX]
	mountpoint   string
	workdir      string
	stateDir     string // from state-dir=, else ""
	readyTimeout time.Duration
	flags        []string // `s3sync mount` flags, --name[=value]; a key is fd://N here
	keys         [][]byte // the keys given in the options: keys[i] is the mount's fd 3+i
	warnings     []string
	fake         bool // -f: check everything, mount nothing
	verbose      bool
}

// runMountHelper is main for mount.s3sync.
func runMountHelper(ctx context.Context, args []string) int {
	hc, err := parseHelperArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, mountHelperName+": "+err.Error())
		return helperUsage
	}
	for _, w := range hc.warnings {
		fmt.Fprintln(os.Stderr, mountHelperName+": warning: "+w)
	}
	if hc.fake {
		return 0
	}
	if err := hc.start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, mountHelperName+": "+err.Error())
		return helperFailed
	}
	return 0
}

// parseHelperArgs reads mount(8)'s helper command line. Options name
// `s3sync mount`'s long flags (allow_other is --allow-other), so every
// flag works here without this file knowing it.
func parseHelperArgs(args []string) (*helperCall, error) {
	hc := &helperCall{readyTimeout: defaultReadyTimeout}
	var pos []string
	var opts []string
	sloppy := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s needs a value", a)
			}
			i++
			switch a {
			case "-o":
				opts = append(opts, splitMountOptions(args[i])...)
			case "-N":
				return nil, errors.New("-N (another mount namespace) is not supported; run mount inside the namespace")
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, splitMountOptions(a[2:])...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, c := range a[1:] {
				switch c {
				case 's':
					sloppy = true
				case 'f':
					hc.fake = true
				case 'n': // no /etc/mtab to write
				case 'v':
					hc.verbose = true
				default:
					return nil, fmt.Errorf("unknown flag -%c; mount(8) calls %s as: %s s3://BUCKET[/PREFIX] MOUNTPOINT [-sfnv] [-o OPTIONS]", c, mountHelperName, mountHelperName)
				}
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("want s3://BUCKET[/PREFIX] and MOUNTPOINT, got %d arguments; in fstab: s3://BUCKET/PREFIX /mnt/work s3sync workdir=/srv/work 0 0", len(pos))
	}
	hc.remote = pos[0]
	mp, err := filepath.Abs(pos[1]) // mount(8) gives it absolute; a person may not
	if err != nil {
		return nil, fmt.Errorf("MOUNTPOINT: %v", err)
	}
	hc.mountpoint = mp
	if _, err := remote.ParseURL(hc.remote); err != nil {
		return nil, fmt.Errorf("the device must be the bucket: %v", err)
	}

	mountCmd := helperMountCmd()
	for _, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		switch {
		case name == "workdir":
			hc.workdir = value
		case name == "ready-timeout" || name == "ready_timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("ready-timeout=%s: want a duration such as 5m", value)
			}
			hc.readyTimeout = d
		case ignoredMountOptions[name], strings.HasPrefix(name, "x-"), name == "comment":
		case name == "noexec":
			hc.warnings = append(hc.warnings, "noexec is not applied: files in an s3sync mount can be executed as in WORKDIR")
		case refusedMountOptions[name] != "":
			return nil, errors.New(refusedMountOptions[name])
		default:
			flag, err := helperFlag(mountCmd, name, value, hasValue)
			if err != nil && sloppy {
				hc.warnings = append(hc.warnings, err.Error()+" (ignored: -s)")
				continue
			}
			if err != nil {
				return nil, err
			}
			if long := strings.ReplaceAll(name, "_", "-"); secretFlags[long] && hasValue && !isKeyReference(value) {
				// The mount gets the key through a pipe (start), never on
				// its command line, which every user can read.
				hc.keys = append(hc.keys, []byte(value))
				flag = fmt.Sprintf("--%s=fd://%d", long, 2+len(hc.keys))
				hc.warnings = append(hc.warnings, fmt.Sprintf("%s is in the mount options, which /etc/fstab and mount's command line show to every user: keep the key in a file only you can read and give %s=fileb:///PATH", name, name))
			}
			hc.flags = append(hc.flags, flag)
			if name == "state-dir" || name == "state_dir" {
				hc.stateDir = value
			}
		}
	}
	if hc.workdir == "" {
		return nil, errors.New("no workdir= option: say which folder to serve, e.g. -o workdir=/srv/work (in fstab: s3://BUCKET/PREFIX /mnt/work s3sync workdir=/srv/work 0 0)")
	}
	if !filepath.IsAbs(hc.workdir) {
		return nil, fmt.Errorf("workdir=%s: give an absolute path", hc.workdir)
	}
	if hc.stateDir != "" && !filepath.IsAbs(hc.stateDir) {
		return nil, fmt.Errorf("state-dir=%s: give an absolute path", hc.stateDir)
	}
	// Values mount's own flags would refuse (settle=abc) fail here, with
	// the flag's own message, rather than in the background.
	if err := mountCmd.ParseFlags(hc.flags); err != nil {
		return nil, fmt.Errorf("-o: %v", err)
	}
	return hc, nil
}

// helperMountCmd is `s3sync mount` as the CLI builds it, to look up and
// check its flags.
func helperMountCmd() *cobra.Command {
	root := newRootCmd()
	c, _, err := root.Find([]string{"mount"})
	if err != nil {
		panic(err) // the command is registered by mount.go's init
	}
	return c
}

// helperFlag turns one -o option into the `s3sync mount` flag it names.
func helperFlag(mountCmd *cobra.Command, name, value string, hasValue bool) (string, error) {
	long := strings.ReplaceAll(name, "_", "-")
	f := mountCmd.Flag(long)
	if f == nil || long == "help" {
		return "", fmt.Errorf("unknown option %s: use an `s3sync mount` flag without its dashes (allow_other, delete, profile=NAME, state-dir=DIR…), workdir=DIR or ready-timeout=DURATION", name)
	}
	if hasValue {
		return "--" + long + "=" + value, nil
	}
	if f.Value.Type() != "bool" && f.NoOptDefVal == "" {
		return "", fmt.Errorf("option %s needs a value: %s=…", name, name)
	}
	return "--" + long, nil
}

// splitMountOptions splits at commas outside double quotes, as libmount
// does (exclude="*.tmp,*.bak"), and drops the quotes.
func splitMountOptions(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

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
