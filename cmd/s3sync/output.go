package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"golang.org/x/term"

	"github.com/s3sync/s3sync/syncer"
)

// outputFlags are the AWS CLI's output switches.
type outputFlags struct {
	quiet          bool
	onlyShowErrors bool
	noProgress     bool
}

func (o *outputFlags) register(c interface {
	BoolVar(*bool, string, bool, string)
}) {
	c.BoolVar(&o.quiet, "quiet", false, "print nothing but a fatal error")
	c.BoolVar(&o.onlyShowErrors, "only-show-errors", false, "print only errors and warnings")
	c.BoolVar(&o.noProgress, "no-progress", false, "do not show the live progress line")
}

// printer turns syncer events into AWS CLI-style lines on stdout, warnings
// and failures on stderr, and a live progress line on a terminal.
type printer struct {
	mu       sync.Mutex
	out, err io.Writer
	flags    outputFlags
	live     bool // progress line on stderr
	start    time.Time

	plannedFiles, plannedBytes int64
	doneFiles, doneBytes       int64
	planComplete               bool
	lineShown                  bool
	stop                       chan struct{}
	stopped                    chan struct{}
}

func newPrinter(flags outputFlags) *printer {
	p := &printer{out: os.Stdout, err: os.Stderr, flags: flags, start: time.Now()}
	p.live = !flags.quiet && !flags.noProgress && !flags.onlyShowErrors && term.IsTerminal(int(os.Stderr.Fd()))
	if p.live {
		p.stop, p.stopped = make(chan struct{}), make(chan struct{})
		go p.ticker()
	}
	return p
}

func (p *printer) ticker() {
	defer close(p.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			p.drawLocked()
			p.mu.Unlock()
		}
	}
}

// planDone tells the progress line that totals are final (ETA possible).
func (p *printer) planDone() {
	p.mu.Lock()
	p.planComplete = true
	p.mu.Unlock()
}

func (p *printer) clearLocked() {
	if p.lineShown {
		fmt.Fprint(p.err, "\r\033[K")
		p.lineShown = false
	}
}

func (p *printer) drawLocked() {
	if !p.live {
		return
	}
	elapsed := time.Since(p.start)
	rate := float64(p.doneBytes) / max(elapsed.Seconds(), 0.001)
	tilde := "~"
	if p.planComplete {
		tilde = ""
	}
	line := fmt.Sprintf("Completed %d of %s%d files, %s of %s%s (%s/s)",
		p.doneFiles, tilde, p.plannedFiles, humanize.IBytes(uint64(p.doneBytes)), tilde,
		humanize.IBytes(uint64(p.plannedBytes)), humanize.IBytes(uint64(rate)))
	if p.planComplete && rate > 0 && p.plannedBytes > p.doneBytes {
		eta := time.Duration(float64(p.plannedBytes-p.doneBytes)/rate) * time.Second
		line += fmt.Sprintf(", %s remaining", eta.Round(time.Second))
	}
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 1 && len(line) >= w {
		line = line[:w-1]
	}
	fmt.Fprint(p.err, "\r\033[K"+line)
	p.lineShown = true
}

// event is the syncer's Report callback.
func (p *printer) event(e syncer.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dry := ""
	if e.DryRun {
		dry = "(dryrun) "
	}
	switch e.Kind {
	case syncer.EventPlanned:
		p.plannedFiles++
		p.plannedBytes += e.Size
		return
	case syncer.EventPlanDone:
		p.planComplete = true
		return
	case syncer.EventDone:
		p.doneFiles++
		p.doneBytes += e.Size
		if p.flags.quiet || p.flags.onlyShowErrors {
			return
		}
		p.clearLocked()
		if e.Dst == "" {
			fmt.Fprintf(p.out, "%s%s: %s\n", dry, e.Op, shown(e.Src))
		} else {
			fmt.Fprintf(p.out, "%s%s: %s to %s\n", dry, e.Op, shown(e.Src), shown(e.Dst))
		}
	case syncer.EventFailed:
		p.doneFiles++
		if p.flags.quiet {
			return
		}
		p.clearLocked()
		if e.Dst == "" {
			fmt.Fprintf(p.err, "%s failed: %s: %s\n", e.Op, shown(e.Src), oneLine(e.Err))
		} else {
			fmt.Fprintf(p.err, "%s failed: %s to %s: %s\n", e.Op, shown(e.Src), shown(e.Dst), oneLine(e.Err))
		}
	case syncer.EventSkipped:
		if p.flags.quiet {
			return
		}
		p.clearLocked()
		fmt.Fprintf(p.err, "warning: skipping %s: %s\n", shown(e.Src), oneLine(e.Err))
	case syncer.EventWarning:
		if p.flags.quiet {
			return
		}
		p.clearLocked()
		fmt.Fprintf(p.err, "warning: %s: %s\n", shown(e.Src), oneLine(e.Err))
	}
}

// oneLine is err's text on one line, with any other control character
// escaped: an error may quote a key, and no key may forge a line.
func oneLine(err error) string {
	return escapeControl(strings.ReplaceAll(fmt.Sprint(err), "\n", " "))
}

// shown is a path or URL as an output line shows it: as is, the AWS CLI's
// way, unless it holds a control character or is not UTF-8; then quoted
// as Go's %q does (ls -b's idea), so that a key like "a\ndownload: s3://b/x
// to /etc/passwd" cannot forge a line.
func shown(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return strconv.Quote(s)
	}
	return s
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u2028' || r == '\u2029'
}

// escapeControl escapes the control characters in s, leaving the rest.
func escapeControl(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// finish stops the progress line and prints the summary.
func (p *printer) finish(s syncer.Summary, dry bool) {
	if p.live {
		close(p.stop)
		<-p.stopped
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	if p.flags.quiet || p.flags.onlyShowErrors {
		return
	}
	if dry {
		fmt.Fprintf(p.err, "dry run: %s planned (%s), nothing changed\n",
			humanCount(p.doneFiles, "operation", "operations"), humanize.IBytes(uint64(p.doneBytes)))
		return
	}
	var parts []string
	if s.Uploaded > 0 {
		parts = append(parts, fmt.Sprintf("uploaded %s", humanCount(s.Uploaded, "file", "files")))
	}
	if s.Downloaded > 0 {
		parts = append(parts, fmt.Sprintf("downloaded %s", humanCount(s.Downloaded, "file", "files")))
	}
	if s.Copied > 0 {
		parts = append(parts, fmt.Sprintf("copied %s", humanCount(s.Copied, "object", "objects")))
	}
	if s.Deleted > 0 {
		parts = append(parts, fmt.Sprintf("deleted %d", s.Deleted))
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing to do, destination up to date")
	}
	line := strings.Join(parts, ", ")
	if s.Bytes > 0 {
		line += fmt.Sprintf(" (%s)", humanize.IBytes(uint64(s.Bytes)))
	}
	if s.Failed > 0 {
		line += fmt.Sprintf("; %d FAILED", s.Failed)
	}
	if s.Skipped > 0 {
		line += fmt.Sprintf("; %d skipped", s.Skipped)
	}
	fmt.Fprintf(p.err, "%s in %s\n", line, time.Since(p.start).Round(time.Millisecond))
}
