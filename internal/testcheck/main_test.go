package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// go test -json's lines for a package with a pass, a skip and a failure.
const run = `{"Action":"start","Package":"p"}
{"Action":"run","Package":"p","Test":"TestOK"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"p","Test":"TestOK","Output":"    a_test.go:3: quiet\n"}
{"Action":"pass","Package":"p","Test":"TestOK"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"    a_test.go:4: needs root\n"}
{"Action":"output","Package":"p","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestSkip"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"    a_test.go:5: boom\n"}
{"Action":"output","Package":"p","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"p","Test":"TestBad"}
{"Action":"output","Package":"p","Output":"FAIL\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.01s\n"}
{"Action":"fail","Package":"p"}
`

func feed(t *testing.T, lines string) (*report, *strings.Builder) {
	t.Helper()
	var out strings.Builder
	r := newReport(&out)
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		r.add([]byte(l))
	}
	return r, &out
}

// A failure's output is shown, a pass's is not, a skip is listed with its
// reason.
func TestReportShowsFailuresAndSkips(t *testing.T) {
	r, out := feed(t, run)
	status := r.finish(nil, false, nil, 0)
	got := out.String()
	for _, want := range []string{"a_test.go:5: boom", "--- FAIL: TestBad", "FAIL\tp\t0.01s", "p TestSkip: a_test.go:4: needs root", "1 passed, 1 failed, 1 skipped"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"quiet", "=== RUN"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, got)
		}
	}
	if status != 1 {
		t.Errorf("status %d with a failed test, want 1", status)
	}
}

// Under CI a skip alone fails the run unless -allow-skip names it; outside
// CI it does not.
func TestSkipFailsCI(t *testing.T) {
	skipOnly := strings.ReplaceAll(strings.ReplaceAll(run, `"fail","Package":"p","Test":"TestBad"`, `"pass","Package":"p","Test":"TestBad"`),
		`{"Action":"fail","Package":"p"}`, `{"Action":"pass","Package":"p"}`)
	cases := []struct {
		ci    bool
		allow string
		want  int
	}{
		{false, "", 0},
		{true, "", 1},
		{true, `^p\.TestSkip$`, 0},
		{true, `^p\.TestOther$`, 1},
	}
	for _, c := range cases {
		r, out := feed(t, skipOnly)
		var allow *regexp.Regexp
		if c.allow != "" {
			allow = regexp.MustCompile(c.allow)
		}
		if got := r.finish(nil, c.ci, allow, 0); got != c.want {
			t.Errorf("ci=%v allow=%q: status %d, want %d\n%s", c.ci, c.allow, got, c.want, out)
		}
	}
	r, _ := feed(t, skipOnly)
	if got := r.finish(errors.New("exit status 2"), false, nil, 0); got != 1 {
		t.Errorf("go test failed without a failed test event: status %d, want 1", got)
	}
}

// A package that panics or times out ends its running test without a
// fail event; that test's output is still shown.
func TestUnfinishedTestShown(t *testing.T) {
	_, out := feed(t, `{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    h_test.go:9: waiting for the mount\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 1m0s\n"}
{"Action":"fail","Package":"p"}`)
	for _, want := range []string{"waiting for the mount", "panic: test timed out"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
