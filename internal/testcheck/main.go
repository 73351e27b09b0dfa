// Command testcheck runs `go test -json` and prints what a person needs
// from it: the output of the tests that failed, one line per package, and
// the list of skipped tests with their reasons. Under CI (CI set to
// anything but "", "0" or "false") a skipped test fails the run: a test
// that cannot run in CI is either made to run or removed, never left to
// pass quietly.
//
//	testcheck [-allow-skip REGEXP] -- go test [flags] [packages]
//
// -json is added to the command. The exit status is 1 when go test
// failed, when any test failed, or under CI when any test was skipped
// that -allow-skip does not name.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of test2json's output (go doc test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type skip struct{ pkg, test, why string }

type report struct {
	out     io.Writer
	buf     map[string][]string // package + "\x00" + test -> output so far
	skips   []skip
	failed  int
	passed  int
	started map[string]bool // packages whose test binary started
}

func newReport(out io.Writer) *report {
	return &report{out: out, buf: map[string][]string{}, started: map[string]bool{}}
}

// add takes one line of go test -json's output.
func (r *report) add(line []byte) {
	var e event
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
		// Not an event (go vet's or the go command's own words): show it.
		fmt.Fprintf(r.out, "%s\n", line)
		return
	}
	id := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(r.out, e.Output)
	case "start":
		r.started[e.Package] = true
	case "output":
		r.buf[id] = append(r.buf[id], e.Output)
	case "pass":
		if e.Test != "" {
			r.passed++
		} else {
			r.printPackage(e.Package, false)
		}
		delete(r.buf, id)
	case "skip":
		if e.Test != "" {
			r.skips = append(r.skips, skip{e.Package, e.Test, reason(r.buf[id])})
		} else {
			r.printPackage(e.Package, false)
		}
		delete(r.buf, id)
	case "fail":
		if e.Test != "" {
			r.failed++
			r.printLines(r.buf[id])
			delete(r.buf, id)
		} else {
			r.printPackage(e.Package, true)
		}
	}
}

// printPackage prints a package's own lines (ok/FAIL/panic/timeout) and,
// when it failed, what its unfinished tests said: a panic or a timeout
// ends a test without a pass or fail event.
func (r *report) printPackage(pkg string, failed bool) {
	if failed {
		var ids []string
		for id := range r.buf {
			if p, t, _ := strings.Cut(id, "\x00"); p == pkg && t != "" {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			r.printLines(r.buf[id])
			delete(r.buf, id)
		}
	}
	id := pkg + "\x00"
	for _, l := range r.buf[id] {
		if l == "PASS\n" || (!failed && l == "testing: warning: no tests to run\n") {
			continue
		}
		fmt.Fprint(r.out, l)
	}
	delete(r.buf, id)
}

func (r *report) printLines(lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "=== ") { // RUN, PAUSE, CONT, NAME
			continue
		}
		fmt.Fprint(r.out, l)
	}
}

// reason is what a skipped test said, without the RUN and SKIP lines.
func reason(lines []string) string {
	var b []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		b = append(b, t)
	}
	return strings.Join(b, " / ")
}

func ci() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "0" && v != "false"
}

func main() {
	allow := flag.String("allow-skip", "", "`regexp` of tests (Package.TestName) whose skip does not fail CI")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: testcheck [-allow-skip REGEXP] -- go test [flags] [packages]")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) < 2 {
		flag.Usage()
		os.Exit(2)
	}
	var allowRE *regexp.Regexp
	if *allow != "" {
		allowRE = regexp.MustCompile(*allow)
	}
	cmd := exec.Command(args[0], append([]string{args[1], "-json"}, args[2:]...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcheck:", err)
		os.Exit(2)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testcheck:", err)
		os.Exit(2)
	}
	r := newReport(os.Stdout)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		r.add(sc.Bytes())
	}
	waitErr := cmd.Wait()
	os.Exit(r.finish(waitErr, ci(), allowRE, time.Since(start)))
}

// finish prints the summary and returns the exit status.
func (r *report) finish(waitErr error, ci bool, allow *regexp.Regexp, took time.Duration) int {
	bad := 0
	if len(r.skips) > 0 {
		fmt.Fprintf(r.out, "\nskipped tests (%d):\n", len(r.skips))
		for _, s := range r.skips {
			mark := ""
			if ci && (allow == nil || !allow.MatchString(s.pkg+"."+s.test)) {
				mark = "  [fails CI]"
				bad++
			}
			fmt.Fprintf(r.out, "  %s %s: %s%s\n", s.pkg, s.test, s.why, mark)
		}
	}
	fmt.Fprintf(r.out, "\ntests: %d passed, %d failed, %d skipped in %s\n", r.passed, r.failed, len(r.skips), took.Round(time.Second))
	switch {
	case waitErr != nil || r.failed > 0:
		fmt.Fprintln(r.out, "FAIL")
		return 1
	case bad > 0:
		fmt.Fprintf(r.out, "FAIL: %d test(s) skipped under CI; a test that cannot run in CI must be made to run or removed\n", bad)
		return 1
	}
	return 0
}
