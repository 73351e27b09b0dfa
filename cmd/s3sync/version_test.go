package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		r := s3sync(t, args...)
		wantCode(t, r, 0)
		lines := strings.Split(r.stdout, "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "s3sync ") {
			t.Fatalf("%v: want 's3sync VERSION' first\n%s", args, r)
		}
		for _, want := range []string{
			"- go: " + runtime.Version(),
			"- github.com/hanwen/go-fuse/v2 v",
			"- github.com/aws/aws-sdk-go-v2/service/s3 v",
			"- go.etcd.io/bbolt v",
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: output lacks %q\n%s", args, want, r)
			}
		}
	}
	// -v stays free: it means "verbose" to rclone and AWS CLI users.
	wantCode(t, s3sync(t, "-v"), 2)
}
