package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3sync/s3sync/internal/s3test"
)

// s3syncBin is the command under test, built once by TestMain.
var s3syncBin string

// TestMain builds the s3sync binary and starts one S3 server for the
// package. The tests drive the binary as a user would: arguments in,
// stdout, stderr and exit code out. s3test.Main sets the AWS_* environment
// (test keys, AWS_CONFIG_FILE=/dev/null), which every child inherits.
func TestMain(m *testing.M) {
	runStatfsProbe(os.Args) // this test binary is the watchdog's probe in TestWatchdogProbe
	// s3test.Main ends with os.Exit, so no cleanup can follow it: the
	// binary outlives the run, named by the test process's id in one
	// directory per user, and the next run removes those whose process
	// has ended.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("s3sync-cli-test-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "cli test:", err)
		os.Exit(1)
	}
	sweepStale(dir)
	s3syncBin = filepath.Join(dir, fmt.Sprintf("s3sync-%d", os.Getpid()))
	if out, err := exec.Command("go", "build", "-o", s3syncBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cli test: go build: %v\n%s", err, out)
		os.Remove(s3syncBin)
		os.Exit(1)
	}
	s3test.Main(m)
}

// sweepStale removes binaries built by test processes that have ended.
func sweepStale(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "s3sync-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// result is what a user sees of one run.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("s3sync %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// lines returns stdout's lines, sorted: transfers finish in any order.
func (r result) lines() []string {
	return sortedLines(r.stdout)
}

func sortedLines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		out = append(out, strings.TrimRight(l, "\n"))
	}
	sort.Strings(out)
	return out
}

// errLines returns stderr's lines in order.
func (r result) errLines() []string {
	var out []string
	for l := range strings.Lines(r.stderr) {
		out = append(out, strings.TrimRight(l, "\n"))
	}
	return out
}

// s3sync runs the binary with args and the test process's environment.
func s3sync(t *testing.T, args ...string) result {
	t.Helper()
	return s3syncEnv(t, nil, args...)
}

// s3syncEnv runs the binary with env applied over the inherited
// environment: "K=V" sets K, "K" alone removes it.
func s3syncEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s3syncBin, args...)
	cmd.Env = mergeEnv(os.Environ(), env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		r.code = exit.ExitCode()
	default:
		t.Fatalf("%v\n%s", err, r)
	}
	return r
}

func mergeEnv(base, over []string) []string {
	drop := map[string]bool{}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	var out []string
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	for _, kv := range over {
		if strings.Contains(kv, "=") {
			out = append(out, kv)
		}
	}
	return out
}

// wantCode fails the test unless r exited with code.
func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\n%s", r.code, code, r)
	}
}

// wantLines fails the test unless stdout holds exactly want, in any order.
func wantLines(t *testing.T, r result, want ...string) {
	t.Helper()
	sort.Strings(want)
	got := r.lines()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stdout lines:\n  %s\nwant:\n  %s\n%s", strings.Join(got, "\n  "), strings.Join(want, "\n  "), r)
	}
}

// wantSummary fails the test unless stderr is exactly one summary line
// containing each of parts, with no progress line (stderr is a pipe).
func wantSummary(t *testing.T, r result, parts ...string) {
	t.Helper()
	lines := r.errLines()
	if len(lines) != 1 {
		t.Fatalf("stderr: want one summary line\n%s", r)
	}
	for _, p := range parts {
		if !strings.Contains(lines[0], p) {
			t.Fatalf("summary %q lacks %q\n%s", lines[0], p, r)
		}
	}
	noProgress(t, r)
}

func noProgress(t *testing.T, r result) {
	t.Helper()
	if strings.ContainsAny(r.stderr, "\r\033") || strings.Contains(r.stderr, "Completed ") {
		t.Fatalf("progress line on a non-terminal stderr\n%s", r)
	}
}

// wantOneErrLine fails the test unless stderr is one line containing each
// of parts.
func wantOneErrLine(t *testing.T, r result, parts ...string) {
	t.Helper()
	lines := r.errLines()
	if len(lines) != 1 {
		t.Fatalf("stderr: want one line\n%s", r)
	}
	for _, p := range parts {
		if !strings.Contains(lines[0], p) {
			t.Fatalf("stderr line %q lacks %q\n%s", lines[0], p, r)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bucketExists asks the server directly, bypassing the code under test.
func bucketExists(t *testing.T, srv *s3test.Server, bucket string) bool {
	t.Helper()
	_, err := srv.Client().HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	return err == nil
}
