package main

import (
	"errors"
	"strings"
	"testing"
)

// No name, however it is spelled, makes two lines of output or passes a
// terminal escape through; ordinary names are shown as the AWS CLI shows
// them.
func TestShownQuotesControlCharacters(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"s3://b/plain name.txt", "s3://b/plain name.txt"},
		{"s3://b/ünïcode", "s3://b/ünïcode"},
		{"s3://b/a\ndownload: s3://b/x to /etc/passwd", `"s3://b/a\ndownload: s3://b/x to /etc/passwd"`},
		{"s3://b/\x1b[2Jclear", `"s3://b/\x1b[2Jclear"`},
		{"s3://b/cr\rback", `"s3://b/cr\rback"`},
		{"s3://b/\xff", `"s3://b/\xff"`},
		{"s3://b/sep\u2028line", `"s3://b/sep\u2028line"`},
	} {
		if got := shown(c.in); got != c.want {
			t.Errorf("shown(%q) = %s, want %s", c.in, got, c.want)
		}
		if strings.ContainsAny(shown(c.in), "\n\r\x1b") {
			t.Errorf("shown(%q) holds a control character", c.in)
		}
	}
	if got := oneLine(errors.New("key a\x1b[31mb: bad\nsecond")); strings.ContainsAny(got, "\n\x1b") {
		t.Errorf("oneLine kept a control character: %q", got)
	}
}
