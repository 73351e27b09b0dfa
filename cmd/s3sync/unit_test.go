package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/s3test"
)

const unitFile = "../../contrib/systemd/s3sync@.service"

// unitSettings reads the [Service] settings of the unit: name → values,
// in order.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	return out
}

// The unit is hardened as far as a FUSE mount that the host must see can
// be: the settings systemd-analyze asks for that need no mount namespace
// of the unit's own, none of those that do (systemd makes a namespaced
// unit's mounts slaves of the host's, so MOUNTPOINT would stay empty
// outside it: TestNamespacedMountHiddenFromHost), and an exposure score of
// at most 4.6 (9.6 before). Not RestrictSUIDSGID= either: it refuses
// setgid directories, which shared folders in WORKDIR use.
func TestServiceUnitHardened(t *testing.T) {
	set := unitSettings(t)
	for k, want := range map[string]string{
		"NoNewPrivileges":         "yes",
		"CapabilityBoundingSet":   "CAP_SYS_ADMIN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_CHOWN CAP_FSETID",
		"DevicePolicy":            "closed",
		"DeviceAllow":             "/dev/fuse rw",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
		"RestrictNamespaces":      "yes",
		"SystemCallArchitectures": "native",
		"SystemCallFilter":        "@system-service @mount fchmodat2",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"RestrictRealtime":        "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
	} {
		if got := strings.Join(set[k], " "); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if v, ok := set["RestrictSUIDSGID"]; ok {
		t.Errorf("RestrictSUIDSGID=%s refuses the setgid bit on directories: a shared folder's setgid directories would fail through the mount", v)
	}
	for _, k := range []string{"ProtectSystem", "ProtectHome", "PrivateTmp", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
		"BindPaths", "BindReadOnlyPaths", "TemporaryFileSystem", "PrivateDevices", "PrivateMounts", "ProtectKernelTunables",
		"ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProcSubset", "RootDirectory", "MountFlags"} {
		if v, ok := set[k]; ok {
			t.Errorf("%s=%s gives the unit a mount namespace of its own: the FUSE mount would not be seen outside it", k, v)
		}
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("no systemd-analyze to score the unit")
	}
	dir := t.TempDir()
	b, _ := os.ReadFile(unitFile)
	unit := filepath.Join(dir, "s3sync@test.service")
	os.WriteFile(unit, b, 0o644)
	cmd := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unit)
	cmd.Dir = dir
	out, _ := cmd.CombinedOutput() // exits non-zero above its own threshold
	m := regexp.MustCompile(`Overall exposure level for s3sync@test\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no score:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 4.6 {
		t.Errorf("exposure %.1f, want at most 4.6:\n%s", score, out)
	}
}

// The unit's capability bounding set, with no new privileges, is enough
// for a mount with --allow-other: it mounts, serves another user, gives
// that user what they create, uploads it and unmounts. (Run under setpriv
// and a UTS namespace of its own, as ProtectHostname= gives; the system
// call filter, address families and device policy need systemd itself.)
func TestServiceUnitCapabilitiesSuffice(t *testing.T) {
	requireRootFUSE(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	var caps []string
	for _, c := range strings.Fields(strings.Join(unitSettings(t)["CapabilityBoundingSet"], " ")) {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // for uid 65534 to reach the mount
	os.Chmod(dir, 0o755)
	work, mnt, state := filepath.Join(dir, "work"), filepath.Join(dir, "mnt"), filepath.Join(dir, "state")
	os.Mkdir(work, 0o755)
	os.Mkdir(mnt, 0o755)
	os.Mkdir(work+"/shared", 0o777)
	os.Chmod(work+"/shared", 0o1777)
	cmd := exec.Command("unshare", "--uts", "setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all,"+strings.Join(caps, ","),
		s3syncBin, "mount", "--allow-other", "--settle=100ms", "--endpoint-url", srv.Endpoint, "--state-dir", state, work, mnt, "s3://"+bucket+"/data")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
		}
	}()
	waitMounted(t, mnt, exited, &log)
	bound := readFile(t, fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if !strings.Contains(bound, "NoNewPrivs:\t1") || strings.Contains(bound, "CapBnd:\t000001ffffffffff") {
		t.Fatalf("the mount does not run under the unit's limits:\n%s", bound)
	}
	as := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", "echo theirs > "+mnt+"/shared/f.txt")
	if out, err := as.CombinedOutput(); err != nil {
		t.Fatalf("uid 65534 writing through the mount: %v %s\n%s", err, out, log.String())
	}
	var st syscall.Stat_t
	if err := syscall.Stat(work+"/shared/f.txt", &st); err != nil || st.Uid != 65534 {
		t.Errorf("f.txt in WORKDIR: uid %d, %v; want 65534's", st.Uid, err)
	}
	waitObject(t, srv, bucket, "data/shared/f.txt")
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("the mount: %v\n%s", err, log.String())
		}
	case <-time.After(time.Minute):
		t.Errorf("the mount did not stop\n%s", log.String())
	}
	if fuseMountedAt(mnt) {
		t.Errorf("still mounted after SIGTERM")
	}
}

// Why the unit has no ProtectSystem=, PrivateTmp= or ReadWritePaths=: in
// a mount namespace set up as systemd sets up a unit's (a new namespace,
// every mount made a slave, then shared: MountFlags' default), the mount
// s3sync makes is there and nowhere else, even below a shared mount of
// the host's (systemd makes / shared at boot). The same namespace without
// the slave step shows the test would see a mount that propagates.
func TestNamespacedMountHiddenFromHost(t *testing.T) {
	requireRootFUSE(t)
	srv := s3test.Get(t)
	for _, tc := range []struct {
		name, setup string
		seen        bool
	}{
		{"as systemd sets up a unit", "mount --make-rslave / && mount --make-rshared /", false},
		{"shared, no slave step (control)", "true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := srv.NewBucket(t)
			dir := t.TempDir()
			// A shared mount on the host, as systemd's / is.
			for _, args := range [][]string{{"--bind", dir, dir}, {"--make-shared", dir}} {
				if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
					t.Fatalf("mount %q: %v %s", args, err, out)
				}
			}
			t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
			work, mnt, state := filepath.Join(dir, "work"), filepath.Join(dir, "mnt"), filepath.Join(dir, "state")
			os.Mkdir(work, 0o755)
			os.Mkdir(mnt, 0o755)
			script := tc.setup + ` || exit 3
"$1" mount --endpoint-url "$2" --state-dir "$3" "$4" "$5" "$6" &
for i in $(seq 600); do
	grep -qF " $5 " /proc/self/mountinfo && { echo mounted-inside; exec sleep 600; }
	sleep 0.1
done
exit 4`
			cmd := exec.Command("unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script, "sh",
				s3syncBin, srv.Endpoint, state, work, mnt, "s3://"+bucket+"/data")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(time.Minute):
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
				exec.Command("umount", "-l", mnt).Run() // the control's, seen here
			}()
			deadline := time.Now().Add(time.Minute)
			for !strings.Contains(out.String(), "mounted-inside") {
				select {
				case err := <-exited:
					t.Fatalf("the namespaced mount ended: %v\n%s", err, out.String())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("not mounted inside after a minute\n%s", out.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if seen := fuseMountedAt(mnt); seen != tc.seen {
				t.Errorf("mounted inside the namespace; seen from the host: %v, want %v", seen, tc.seen)
			}
		})
	}
}

func requireRootFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		t.Skip("mounts need /dev/fuse and root here")
	}
}

func waitMounted(t *testing.T, mnt string, exited chan error, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !fuseMountedAt(mnt) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the mount exited: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after a minute\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Under the unit's SystemCallFilter= and RestrictAddressFamilies= a call
// outside them fails with EPERM. Without systemd to apply them here, a
// mount's session (mount, --pull, the watchdog's probes, writes, renames,
// chmod, a link, another user's file and FIFO, SIGHUP, SIGTERM) runs under
// strace, and every system call it makes, in every process, must be one
// the filter allows, every socket one of the allowed families.
func TestServiceUnitAllowsWhatTheMountCalls(t *testing.T) {
	requireRootFUSE(t)
	for _, bin := range []string{"strace", "systemd-analyze", "setpriv"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("no %s", bin)
		}
	}
	set := unitSettings(t)
	allowed := syscallGroups(t, strings.Fields(strings.Join(set["SystemCallFilter"], " "))...)
	families := strings.Fields(strings.Join(set["RestrictAddressFamilies"], " "))

	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	work, mnt, state := filepath.Join(dir, "work"), filepath.Join(dir, "mnt"), filepath.Join(dir, "state")
	os.Mkdir(work, 0o755)
	os.Mkdir(mnt, 0o755)
	os.Mkdir(work+"/shared", 0o777)
	os.Chmod(work+"/shared", 0o1777)
	// A notify socket, so the watchdog runs its probe.
	notify := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := ln.Read(buf); err != nil {
				return
			}
		}
	}()
	trace := filepath.Join(dir, "trace")
	cmd := exec.Command("strace", "-f", "-qq", "-o", trace, s3syncBin, "mount", "--allow-other", "--settle=100ms", "--pull=1s",
		"--metrics-addr", "127.0.0.1:0", "--endpoint-url", srv.Endpoint, "--state-dir", state, "--log-file", filepath.Join(dir, "log"),
		work, mnt, "s3://"+bucket+"/data")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify, "WATCHDOG_USEC=400000")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitMounted(t, mnt, exited, &log)
	pid := infoPID(t, state) // the mount, below strace
	for _, sh := range []string{
		"echo hi > a.txt && mkdir d && mv a.txt d/b.txt && chmod 600 d/b.txt && ln -s d/b.txt l && truncate -s 100 d/b.txt && cat d/b.txt >/dev/null && ls -la >/dev/null",
		"setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo x > shared/u.txt && mkfifo shared/ff && rm shared/ff'",
	} {
		c := exec.Command("sh", "-c", sh)
		c.Dir = mnt
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", sh, err, out)
		}
	}
	waitObject(t, srv, bucket, "data/shared/u.txt")
	time.Sleep(1500 * time.Millisecond) // a pull and a few probes
	syscall.Kill(pid, syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the mount under strace: %v\n%s", err, log.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the mount under strace did not stop")
	}

	calls := map[string]int{}
	probes := 0
	name := regexp.MustCompile(`^\d+\s+([a-z0-9_]+)\(`)
	family := regexp.MustCompile(`\bsocket\((AF_[A-Z0-9]+)`)
	b, _ := os.ReadFile(trace)
	for _, line := range strings.Split(string(b), "\n") {
		if m := name.FindStringSubmatch(line); m != nil {
			c := m[1]
			if n, ok := straceNames[c]; ok {
				c = n
			}
			calls[c]++
		}
		if m := family.FindStringSubmatch(line); m != nil && !slices.Contains(families, m[1]) {
			t.Errorf("a socket of family %s, not in RestrictAddressFamilies: %s", m[1], line)
		}
		if strings.Contains(line, `execve("/proc/self/exe", ["`+statfsProbeName) {
			probes++
		}
	}
	if calls["mount"] == 0 || calls["umount2"] == 0 || probes == 0 {
		t.Fatalf("the trace lacks the mount, the unmount or a probe (%d); strace saw: %v", probes, calls)
	}
	for c := range calls {
		if !allowed[c] {
			t.Errorf("%s is called (%d times) but not in SystemCallFilter=%s", c, calls[c], strings.Join(set["SystemCallFilter"], " "))
		}
	}
}

// straceNames names the calls an older strace shows by number only.
var straceNames = map[string]string{"syscall_0x1c4": "fchmodat2"}

// syscallGroups is the system calls of systemd's named groups, nested
// groups expanded.
func syscallGroups(t *testing.T, names ...string) map[string]bool {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "syscall-filter", "--no-pager").Output()
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "@"):
			cur = strings.Fields(line)[0]
		case cur != "" && f != "" && !strings.HasPrefix(f, "#"):
			groups[cur] = append(groups[cur], f)
		}
	}
	set := map[string]bool{}
	seen := map[string]bool{}
	var add func(string)
	add = func(n string) {
		if !strings.HasPrefix(n, "@") {
			set[n] = true
			return
		}
		if seen[n] {
			return
		}
		seen[n] = true
		if _, ok := groups[n]; !ok {
			t.Fatalf("systemd-analyze knows no group %s", n)
		}
		for _, m := range groups[n] {
			add(m)
		}
	}
	for _, n := range names {
		add(n)
	}
	return set
}
