package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// What the mount says about its transport once mounted: nothing with off;
// one info line with auto (why not, if it fell back); with on, a mount not
// served over io_uring is an error, in one line, saying why.
func TestIoURingCheck(t *testing.T) {
	notOffered := errors.New("io_uring: kernel did not offer it (needs Linux 6.14+ and fuse module parameter enable_uring=Y)")
	for _, c := range []struct {
		mode    ioURingMode
		err     error
		wantErr string
		wantLog string
	}{
		{ioURingOff, notOffered, "", ""},
		{ioURingAuto, nil, "", "serving the mount over io_uring"},
		{ioURingAuto, notOffered, "", "serving the mount over /dev/fuse, not io_uring"},
		{ioURingOn, nil, "", "serving the mount over io_uring"},
		{ioURingOn, notOffered, "--io-uring=on: the mount could not be served over io_uring", ""},
	} {
		var buf bytes.Buffer
		err := c.mode.check(c.err, slog.New(slog.NewTextHandler(&buf, nil)))
		if (err == nil) != (c.wantErr == "") || err != nil && !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s, %v: error %v, want %q", c.mode, c.err, err, c.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is more than one line: %q", c.mode, err)
		}
		lines := strings.Count(buf.String(), "\n")
		if c.wantLog == "" && lines != 0 || c.wantLog != "" && (lines != 1 || !strings.Contains(buf.String(), c.wantLog)) {
			t.Errorf("%s, %v: logged %q, want one line with %q", c.mode, c.err, buf.String(), c.wantLog)
		}
		if c.mode == ioURingAuto && c.err != nil && !strings.Contains(buf.String(), "enable_uring") {
			t.Errorf("auto fallback does not say why: %q", buf.String())
		}
	}
}

func TestIoURingFlag(t *testing.T) {
	var m ioURingMode
	for _, ok := range []string{"off", "auto", "on", "AUTO"} {
		if err := m.Set(ok); err != nil {
			t.Errorf("--io-uring=%s: %v", ok, err)
		}
	}
	if err := m.Set("yes"); err == nil {
		t.Error("--io-uring=yes accepted")
	}
}
