package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Bad log and metrics flags stop the mount before anything is touched,
// with one line saying what to give instead.
func TestMountRefusesBadLogAndMetricsFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		flags []string
		parts []string
	}{
		{[]string{"--log-level", "verbose"}, []string{`--log-level "verbose"`, "debug, info, warn or error"}},
		{[]string{"--log-format", "xml"}, []string{`--log-format "xml"`, "text or json"}},
		{[]string{"--log-file", filepath.Join(dir, "missing", "s3sync.log")}, []string{"--log-file", "no such file or directory"}},
		{[]string{"--metrics-addr", "localhost"}, []string{`--metrics-addr "localhost"`, "HOST:PORT"}},
		{[]string{"--metrics-addr", "127.0.0.1:99999"}, []string{`port "99999"`, "0 to 65535"}},
		{[]string{"--metrics-addr", "127.0.0.1:http"}, []string{`port "http"`}},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			args := append([]string{"mount"}, tc.flags...)
			r := s3sync(t, append(args, dir, filepath.Join(dir, "mnt"), "s3://bucket")...)
			wantCode(t, r, exitSkipped)
			wantOneErrLine(t, r, tc.parts...)
		})
	}
}

// A metrics port that is taken refuses the mount: a service whose
// metrics silently vanished would not be watched.
func TestMountRefusesTakenMetricsPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	r := s3sync(t, "mount", "--metrics-addr", ln.Addr().String(), "--state-dir", filepath.Join(dir, "state"), dir, mnt, "s3://bucket")
	wantCode(t, r, exitFailed)
	wantOneErrLine(t, r, "--metrics-addr "+ln.Addr().String(), "address already in use")
	if _, err := os.Stat(filepath.Join(dir, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused mount made its state dir: %v", err)
	}
}

// Under journald each record is one line: priority prefix, no time, the
// message, then the attributes; json keeps level and message as keys.
func TestJournaldHandler(t *testing.T) {
	for _, tc := range []struct {
		name  string
		json  bool
		level slog.Level
		log   func(*slog.Logger)
		want  string
	}{
		{"error", false, slog.LevelInfo, func(l *slog.Logger) { l.Error("journal", "err", "disk full") }, "<3>journal err=\"disk full\"\n"},
		{"warn", false, slog.LevelInfo, func(l *slog.Logger) { l.Warn("endpoint unreachable") }, "<4>endpoint unreachable\n"},
		{"info with group", false, slog.LevelInfo, func(l *slog.Logger) { l.With("a", 1).WithGroup("g").Info("hello", "b", 2) }, "<6>hello a=1 g.b=2\n"},
		{"debug", false, slog.LevelDebug, func(l *slog.Logger) { l.Debug("fs: mounted") }, "<7>fs: mounted\n"},
		{"filtered", false, slog.LevelWarn, func(l *slog.Logger) { l.Info("mounted") }, ""},
		{"message on one line", false, slog.LevelInfo, func(l *slog.Logger) { l.Info("two\nlines") }, "<6>two lines\n"},
		{"json", true, slog.LevelInfo, func(l *slog.Logger) { l.Warn("offline", "n", 3) }, "<4>{\"level\":\"WARN\",\"msg\":\"offline\",\"n\":3}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(slog.New(newJournaldHandler(&buf, tc.json, &slog.HandlerOptions{Level: tc.level})))
			if buf.String() != tc.want {
				t.Errorf("got %q, want %q", buf.String(), tc.want)
			}
			if tc.json && tc.want != "" {
				var v map[string]any
				if err := json.Unmarshal(buf.Bytes()[3:], &v); err != nil {
					t.Errorf("not JSON after the prefix: %v", err)
				}
			}
		})
	}
}

// JOURNAL_STREAM is believed only for the stream it names: a child whose
// stderr was redirected inherits the variable but not the stream.
func TestUnderJournald(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  string
		want bool
	}{
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino), true},
		{fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false},
		{"", false},
		{"garbage", false},
	} {
		t.Setenv("JOURNAL_STREAM", tc.env)
		if got := underJournald(f); got != tc.want {
			t.Errorf("JOURNAL_STREAM=%q: underJournald = %v, want %v", tc.env, got, tc.want)
		}
	}
}

// With --log-file, the reason a mount stops is in the file too, not only on
// a stderr nobody may be reading.
func TestMountLogFileGetsTheFinalError(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "s3sync.log")
	r := s3sync(t, "mount", "--log-file", logPath, filepath.Join(dir, "missing"), filepath.Join(dir, "mnt"), "s3://bucket")
	wantCode(t, r, exitSkipped)
	wantOneErrLine(t, r, "is not a directory")
	if got := readFile(t, logPath); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "is not a directory") {
		t.Errorf("log file %s:\n%s", logPath, got)
	}
	if st, err := os.Stat(logPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, %v; want 0600", st.Mode(), err)
	}
}
