package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/internal/faultproxy"
	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
)

// startWith is start with the mount's stderr going to a file and env added
// to its environment, as systemd runs a service.
func (m *mount) startWith(stderr *os.File, env ...string) {
	m.t.Helper()
	m.log = &logBuffer{}
	m.cmd = exec.Command(bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, stderr
	m.cmd.Env = append(os.Environ(), env...)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.done = make(chan struct{})
	go func() { m.cmd.Wait(); close(m.done) }()
	m.waitFor("the mount to come up", 30*time.Second, func() bool {
		select {
		case <-m.done:
			b, _ := os.ReadFile(stderr.Name())
			m.t.Fatalf("s3sync mount exited: %s", b)
		default:
		}
		var st syscall.Statfs_t
		return syscall.Statfs(m.mountpoint, &st) == nil && st.Type == 0x65735546
	})
}

// journalStream is JOURNAL_STREAM as systemd sets it for a service whose
// stderr is f.
func journalStream(t *testing.T, f *os.File) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino)
}

// Under systemd (JOURNAL_STREAM names stderr) every line starts with its
// syslog priority, for `journalctl -p`, and has no time of its own; the
// level flag decides which lines are written at all, the fs package's
// lines included (they go through the same logger). The mount starts with
// its endpoint unreachable, which is a warning.
func TestMountLogsForJournald(t *testing.T) {
	srv := s3test.Get(t)
	const (
		warn  = "<4>endpoint unreachable; mounting offline"
		info  = "<6>mounted workdir="
		debug = "<7>fs: mounted workdir="
	)
	for _, tc := range []struct {
		level   string
		want    []string
		notWant []string
	}{
		{"debug", []string{warn, info, debug}, nil},
		{"info", []string{warn, info}, []string{debug}},
		{"warn", []string{warn}, []string{info, debug}},
		{"error", nil, []string{warn, info, debug}},
	} {
		t.Run(tc.level, func(t *testing.T) {
			m := newMountVia(t, srv.NewBucket(t), "http://127.0.0.1:1", "--log-level", tc.level)
			stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			m.startWith(stderr, journalStream(t, stderr))
			m.stop()
			b, _ := os.ReadFile(stderr.Name())
			out := string(b)
			for _, w := range tc.want {
				if !hasLinePrefix(out, w) {
					t.Errorf("no line starting %q in:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if hasLinePrefix(out, w) {
					t.Errorf("a line starting %q at --log-level %s:\n%s", w, tc.level, out)
				}
			}
			for l := range strings.Lines(out) {
				if !regexp.MustCompile(`^<[3-7]>\S`).MatchString(l) || strings.Contains(l, "time=") || strings.Contains(l, "level=") {
					t.Errorf("line not in journald form (<N>message key=value…): %q", l)
				}
			}
		})
	}
}

// The same mount with stderr not the journal's (JOURNAL_STREAM inherited
// by a child whose stderr was redirected) writes ordinary lines.
func TestMountLogsJournalStreamMismatch(t *testing.T) {
	srv := s3test.Get(t)
	m := newMountVia(t, srv.NewBucket(t), "http://127.0.0.1:1")
	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	other, err := os.Create(filepath.Join(t.TempDir(), "other"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	m.startWith(stderr, journalStream(t, other))
	m.stop()
	b, _ := os.ReadFile(stderr.Name())
	if !hasLinePrefix(string(b), "time=") || strings.Contains(string(b), "<6>") {
		t.Errorf("want plain slog text lines, got:\n%s", b)
	}
}

func hasLinePrefix(s, prefix string) bool {
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// jsonLogLines parses every line of a --log-format json log.
func jsonLogLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for l := range strings.Lines(string(b)) {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%s: a line is not JSON: %q: %v", path, l, err)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := v[k]; !ok {
				t.Errorf("%s: line without %q: %q", path, k, l)
			}
		}
		out = append(out, v)
	}
	return out
}

func hasMsg(lines []map[string]any, msg string) bool {
	for _, l := range lines {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

// logrotate's way: rename the file, send SIGHUP; the mount's next lines
// go to a new file at the old name, nothing is lost and stderr stays quiet.
func TestMountLogFileReopenedOnSIGHUP(t *testing.T) {
	srv := s3test.Get(t)
	logPath := filepath.Join(t.TempDir(), "s3sync.log")
	m := newMount(t, srv.NewBucket(t), "--log-file", logPath, "--log-format", "json")
	m.start()
	if st, err := os.Stat(logPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("log file: %v, %v; want mode 0600", st.Mode(), err)
	}
	// The kernel sees the mount as soon as FUSE's INIT is answered; the
	// line comes just after.
	m.waitFor("the \"mounted\" line in "+logPath, 10*time.Second, func() bool {
		return hasMsg(jsonLogLines(t, logPath), "mounted")
	})
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	m.cmd.Process.Signal(syscall.SIGHUP)
	m.waitFor("a new log file after SIGHUP", 30*time.Second, func() bool {
		_, err := os.Stat(logPath)
		return err == nil
	})
	testfs.WriteFile(t, m.mountpoint+"/a.txt", "after the rotation")
	m.waitDrained(60 * time.Second)
	m.stop()

	old, fresh := jsonLogLines(t, rotated), jsonLogLines(t, logPath)
	if !hasMsg(fresh, "log file reopened (SIGHUP)") || !hasMsg(fresh, "stopping") {
		t.Errorf("new file lacks the lines after the rotation: %v", fresh)
	}
	if hasMsg(old, "stopping") {
		t.Errorf("the rotated file still got lines after SIGHUP: %v", old)
	}
	if st, err := os.Stat(logPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("reopened log file: %v, %v; want mode 0600", st.Mode(), err)
	}
	if m.log.Len() != 0 {
		t.Errorf("with --log-file, stderr got: %s", m.log)
	}
}

// metricsURL reads the address the mount logged it serves metrics at.
func metricsURL(t *testing.T, m *mount, logPath string) string {
	t.Helper()
	re := regexp.MustCompile(`msg="serving metrics" url=(\S+)`)
	var url string
	m.waitFor("the metrics address in the log", 30*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		if sm := re.FindSubmatch(b); sm != nil {
			url = string(sm[1])
		}
		return url != ""
	})
	return url
}

// scrape reads the Prometheus text exposition at url: "name{labels}" (as
// written: labels sorted by name) to value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad line %q", url, l)
		}
		out[l[:i]] = v
	}
	return out
}

// The metrics tell what status tells (pending up while the endpoint is
// away, offline, then drained) and count what was sent, by result.
func TestMountMetrics(t *testing.T) {
	srv := s3test.Get(t)
	proxy, err := faultproxy.New(srv.Endpoint, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	logPath := filepath.Join(t.TempDir(), "s3sync.log")
	m := newMountVia(t, srv.NewBucket(t), proxy.URL(), "--delete", "--metrics-addr", "127.0.0.1:0", "--log-file", logPath)
	m.start()
	url := metricsURL(t, m, logPath)
	var got map[string]float64
	// Until the start-up is done only the counters are served.
	m.waitFor("the status gauges", 30*time.Second, func() bool {
		got = scrape(t, url)
		_, ok := got["s3sync_pending_records"]
		return ok
	})
	for name, want := range map[string]float64{
		"s3sync_pending_records": 0, "s3sync_offline": 0, "s3sync_failed_records": 0,
		`s3sync_uploads_total{result="ok"}`: 0, `s3sync_uploads_total{result="failed"}`: 0,
		`s3sync_deletes_total{result="ok"}`: 0, `s3sync_copies_total{result="ok"}`: 0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("at start %s = %v (exported: %v), want %v", name, v, ok, want)
		}
	}

	proxy.Pause()
	sizes := []int{10, 2000, 70000}
	total := 0
	for i, n := range sizes {
		testfs.WriteFile(t, fmt.Sprintf("%s/f%d", m.mountpoint, i), strings.Repeat("x", n))
		total += n
	}
	m.waitFor("metrics to show the files pending and the endpoint offline", 60*time.Second, func() bool {
		got = scrape(t, url)
		return got["s3sync_pending_records"] == float64(len(sizes)) && got["s3sync_offline"] == 1
	})
	// Nothing moves while offline: status must say the same.
	r := m.status()
	if got["s3sync_pending_bytes"] != float64(total) || r.PendingBytes != total || r.Pending != len(sizes) || !r.Offline {
		t.Errorf("offline: metrics pending_bytes %v, status %+v; want %d bytes in %d files, offline", got["s3sync_pending_bytes"], r, total, len(sizes))
	}
	if got["s3sync_oldest_pending_age_seconds"] <= 0 {
		t.Errorf("oldest pending age %v while files wait", got["s3sync_oldest_pending_age_seconds"])
	}

	proxy.Resume()
	m.waitFor("metrics to show everything sent", 120*time.Second, func() bool {
		got = scrape(t, url)
		return got["s3sync_pending_records"] == 0 && got["s3sync_in_flight"] == 0 && got["s3sync_offline"] == 0
	})
	r = m.status()
	if r.Pending != 0 || r.Offline || len(r.Failed) != 0 || got["s3sync_failed_records"] != 0 {
		t.Errorf("drained: status %+v, metrics failed %v", r, got["s3sync_failed_records"])
	}
	if r.LastUpload == nil || got["s3sync_last_upload_timestamp_seconds"] != float64(r.LastUpload.UnixNano())/1e9 {
		t.Errorf("last upload: metrics %v, status %v", got["s3sync_last_upload_timestamp_seconds"], r.LastUpload)
	}
	if v := got[`s3sync_uploads_total{result="ok"}`]; v != float64(len(sizes)) {
		t.Errorf("uploads ok = %v, want %d", v, len(sizes))
	}
	if v := got[`s3sync_upload_bytes_total{result="ok"}`]; v != float64(total) {
		t.Errorf("upload bytes ok = %v, want %d", v, total)
	}
	if got[`s3sync_uploads_total{result="failed"}`] == 0 {
		t.Errorf("no failed upload counted while the endpoint was away")
	}
	if got[`s3sync_s3_request_duration_seconds_count{operation="PutObject",result="ok"}`] < float64(len(sizes)) {
		t.Errorf("request latency histogram: %v PutObject ok", got[`s3sync_s3_request_duration_seconds_count{operation="PutObject",result="ok"}`])
	}
	if got[`s3sync_journal_commit_duration_seconds_count{result="ok"}`] == 0 {
		t.Errorf("no journal commit observed")
	}

	run(t, m.mountpoint, "mv", "f1", "g1")
	os.Remove(m.mountpoint + "/f0")
	m.waitFor("the rename and the removal sent", 60*time.Second, func() bool {
		got = scrape(t, url)
		return got["s3sync_pending_records"] == 0 && got["s3sync_in_flight"] == 0 &&
			got[`s3sync_deletes_total{result="ok"}`] == 2
	})
	if v, b := got[`s3sync_copies_total{result="ok"}`], got[`s3sync_copy_bytes_total{result="ok"}`]; v != 1 || b != float64(sizes[1]) {
		t.Errorf("after a rename: %v copies, %v bytes; want 1, %d", v, b, sizes[1])
	}
	m.bucketMatchesWorkdir()
	m.stop()
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), `msg="deleted from the bucket" objects=2`) {
		t.Errorf("the log does not say 2 objects were deleted:\n%s", b)
	}
}

// Without --log-file, SIGHUP is a terminal hanging up: the mount stops as
// on SIGTERM, unmounted and exit 0, not killed with the mountpoint left
// answering ENOTCONN.
func TestMountStopsCleanlyOnSIGHUP(t *testing.T) {
	srv := s3test.Get(t)
	m := newMount(t, srv.NewBucket(t))
	m.start()
	m.cmd.Process.Signal(syscall.SIGHUP)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("mount still running 60s after SIGHUP: %s", m.log)
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGHUP, want 0: %s", code, m.log)
	}
	m.cmd = nil
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.mountpoint, &st); err != nil || st.Type == 0x65735546 {
		t.Errorf("after SIGHUP the mountpoint is %v (FUSE: %v), want unmounted", err, st.Type == 0x65735546)
	}
}
