package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// logFlags are the mount's logging options. They are the mount's alone:
// reconcile, verify and the rest print for people on stdout and stderr,
// and a flag that changed nothing there would mislead.
type logFlags struct {
	level  string
	format string
	file   string
}

func (l *logFlags) register(f *pflag.FlagSet) {
	f.StringVar(&l.level, "log-level", "info", "least important log lines written: debug, info, warn or error")
	f.StringVar(&l.format, "log-format", "text", "log line format: text (key=value) or json (one object per line)")
	f.StringVar(&l.file, "log-file", "", "append log lines to this file instead of stderr (created 0600; a symlink or another user's file there is refused); reopened on SIGHUP, for logrotate")
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func (l *logFlags) validate() error {
	if _, ok := logLevels[strings.ToLower(l.level)]; !ok {
		return usageErr("--log-level %q is not a log level; use debug, info, warn or error", l.level)
	}
	switch strings.ToLower(l.format) {
	case "text", "json":
	default:
		return usageErr("--log-format %q is not a log format; use text or json", l.format)
	}
	return nil
}

// open builds the logger the flags ask for and makes it slog's default, so
// the fs package's lines (slog.Debug, slog.Error) go the same way. close
// is given the mount's result: with --log-file, an error the mount ends
// with is written there too (stderr gets it anyway), so the file says why
// the service stopped. close then stops the SIGHUP handling and closes
// the file.
func (l *logFlags) open() (log *slog.Logger, close func(error), err error) {
	opts := &slog.HandlerOptions{Level: logLevels[strings.ToLower(l.level)]}
	json := strings.EqualFold(l.format, "json")
	var h slog.Handler
	var warn func(*slog.Logger) // what to log once the logger exists
	close = func(error) {}
	switch {
	case l.file != "":
		f, loosened, err := openLogFile(l.file)
		var refused *fileRefusedError
		switch {
		case errors.As(err, &refused):
			return nil, nil, usageErr("--log-file: %v", err)
		case err != nil:
			return nil, nil, usageErr("--log-file: %v; give a file in an existing directory this user can write", err)
		}
		h = newHandler(f, json, opts)
		if loosened != 0 {
			warn = func(log *slog.Logger) { f.warnLoosened(log, loosened) }
		}
		stop := f.reopenOnHUP()
		close = func(err error) {
			if err != nil {
				log.Error("mount ended with an error", "err", err)
			}
			stop()
		}
	case underJournald(os.Stderr):
		h = newJournaldHandler(os.Stderr, json, opts)
	default:
		h = newHandler(os.Stderr, json, opts)
	}
	log = slog.New(h)
	slog.SetDefault(log)
	if warn != nil {
		warn(log)
	}
	return log, close, nil
}

func newHandler(w io.Writer, json bool, opts *slog.HandlerOptions) slog.Handler {
	if json {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// underJournald reports whether stderr is the stream systemd connected to
// the journal: JOURNAL_STREAM holds its device and inode ("DEV:INODE"), and
// a stderr redirected elsewhere (a pipe, a file) no longer matches.
func underJournald(stderr *os.File) bool {
	var dev, ino uint64
	if _, err := fmt.Sscanf(os.Getenv("JOURNAL_STREAM"), "%d:%d", &dev, &ino); err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(stderr.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// syslogPriority is sd-daemon.h's prefix for a level: journald takes it
// as the line's priority (journalctl -p), and strips it.
func syslogPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>" // SD_ERR
	case l >= slog.LevelWarn:
		return "<4>" // SD_WARNING
	case l >= slog.LevelInfo:
		return "<6>" // SD_INFO
	default:
		return "<7>" // SD_DEBUG
	}
}

// journaldHandler writes lines for journald: no time (the journal stamps
// each line), the level as a priority prefix, and in text format the
// message first and bare, as journalctl shows other daemons' lines:
//
//	<4>endpoint unreachable; mounting offline, … err="…"
type journaldHandler struct {
	inner slog.Handler // writes the rest of the line into out.scratch
	json  bool
	out   *journaldOut
}

type journaldOut struct {
	mu      sync.Mutex
	w       io.Writer
	scratch bytes.Buffer
	line    bytes.Buffer
}

func newJournaldHandler(w io.Writer, json bool, opts *slog.HandlerOptions) *journaldHandler {
	out := &journaldOut{w: w}
	inner := *opts
	inner.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 {
			switch a.Key {
			case slog.TimeKey:
				return slog.Attr{}
			case slog.LevelKey, slog.MessageKey:
				if !json {
					return slog.Attr{}
				}
			}
		}
		return a
	}
	return &journaldHandler{inner: newHandler(&out.scratch, json, &inner), json: json, out: out}
}

func (h *journaldHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journaldHandler) Handle(ctx context.Context, r slog.Record) error {
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.scratch.Reset()
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	o.line.Reset()
	o.line.WriteString(syslogPriority(r.Level))
	if !h.json {
		// One record, one journal entry: a message never spans lines.
		o.line.WriteString(strings.ReplaceAll(r.Message, "\n", " "))
		if o.scratch.Len() > 1 {
			o.line.WriteByte(' ')
		}
	}
	rest := o.scratch.Bytes()
	if !h.json && len(rest) == 1 {
		rest = rest[:0] // only the newline: no attributes
	}
	o.line.Write(rest)
	if !bytes.HasSuffix(o.line.Bytes(), []byte("\n")) {
		o.line.WriteByte('\n')
	}
	_, err := o.w.Write(o.line.Bytes())
	return err
}

func (h *journaldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journaldHandler{inner: h.inner.WithAttrs(as), json: h.json, out: h.out}
}

func (h *journaldHandler) WithGroup(name string) slog.Handler {
	return &journaldHandler{inner: h.inner.WithGroup(name), json: h.json, out: h.out}
}

// logFile is a log file that logrotate can move away: after SIGHUP the
// lines go to a new file at the same path. It is opened for appending, so
// lines from before a restart are kept and `copytruncate` works too.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

// openLogFile opens the log file as openPrivate does: a symlink or
// another user's file at path is refused; loosened is the mode it had
// when others could read it (it is 0600 now).
func openLogFile(path string) (l *logFile, loosened fs.FileMode, err error) {
	f, loosened, err := openPrivate(path, os.O_WRONLY|os.O_APPEND, false)
	if err != nil {
		return nil, 0, err
	}
	return &logFile{path: path, f: f}, loosened, nil
}

func (l *logFile) warnLoosened(log *slog.Logger, was fs.FileMode) {
	log.Warn("the log file was open to other users; it is 0600 now", "file", l.path, "was", fmt.Sprintf("%04o", uint32(was)))
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// reopen switches to a file opened afresh at the path. When that fails the
// lines keep going to the old file, which is better than losing them.
func (l *logFile) reopen() (loosened fs.FileMode, err error) {
	f, loosened, err := openPrivate(l.path, os.O_WRONLY|os.O_APPEND, false)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return loosened, old.Close()
}

// reopenOnHUP reopens the file on every SIGHUP until the returned function
// is called, which also closes the file.
func (l *logFile) reopenOnHUP() func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-hup:
				loosened, err := l.reopen()
				if err != nil {
					slog.Error("could not reopen the log file after SIGHUP; still writing to the one open before", "file", l.path, "err", err)
					continue
				}
				slog.Info("log file reopened (SIGHUP)", "file", l.path)
				if loosened != 0 {
					l.warnLoosened(slog.Default(), loosened)
				}
			case <-stop:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(stop)
		<-done
		l.mu.Lock()
		l.f.Close()
		l.mu.Unlock()
	}
}
