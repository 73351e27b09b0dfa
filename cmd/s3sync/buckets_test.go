package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// newBucketName is a bucket name no test has used, removed with all its
// versions when the test ends.
func newBucketName(t *testing.T, srv *s3test.Server) string {
	t.Helper()
	name := "clitest" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()))
	t.Cleanup(func() {
		if bucketExists(t, srv, name) {
			s3sync(t, "rb", "--endpoint-url="+srv.Endpoint, "--force", "s3://"+name)
		}
	})
	return name
}

// lifecycleSupported says whether the store answers lifecycle requests
// (Versity Gateway v1.8.0 does not).
func lifecycleSupported(t *testing.T, srv *s3test.Server, bucket string) bool {
	t.Helper()
	_, err := srv.Client().GetBucketLifecycleConfiguration(context.Background(), &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	return err == nil || !strings.Contains(err.Error(), "NotImplemented")
}

// wantMbOutput checks what mb printed besides want: the lifecycle rule's
// line where the store has lifecycle rules (and the rule in the bucket),
// else the one warning that says it has none; and nothing on stderr but
// warnings.
func wantMbOutput(t *testing.T, r result, srv *s3test.Server, bucket string, want ...string) {
	t.Helper()
	for _, l := range r.errLines() {
		if !strings.HasPrefix(l, "warning: ") && !strings.HasPrefix(l, "s3sync: ") {
			t.Fatalf("stderr line %q is neither a warning nor the error\n%s", l, r)
		}
	}
	if !lifecycleSupported(t, srv, bucket) {
		wantErrLine(t, r, "warning: this store does not support lifecycle rules; multipart uploads left incomplete in "+bucket+" are not aborted automatically")
		wantLines(t, r, want...)
		return
	}
	wantLines(t, r, append(want, "lifecycle: multipart uploads left incomplete in "+bucket+" are aborted after 7 days")...)
	out, err := srv.Client().GetBucketLifecycleConfiguration(context.Background(), &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)})
	if err != nil || len(out.Rules) != 1 || !remote.AbortsUploadsEverywhere(out.Rules[0]) ||
		aws.ToInt32(out.Rules[0].AbortIncompleteMultipartUpload.DaysAfterInitiation) != 7 {
		t.Fatalf("lifecycle rules %+v, %v; want one aborting uploads after 7 days", out, err)
	}
}

// wantErrLine fails the test unless stderr has line.
func wantErrLine(t *testing.T, r result, line string) {
	t.Helper()
	for _, l := range r.errLines() {
		if l == line {
			return
		}
	}
	t.Fatalf("stderr lacks the line\n  %s\n%s", line, r)
}

func versioningOf(t *testing.T, srv *s3test.Server, bucket string) types.BucketVersioningStatus {
	t.Helper()
	out, err := srv.Client().GetBucketVersioning(context.Background(), &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("get versioning of %s: %v", bucket, err)
	}
	return out.Status
}

// mb --versioning makes a bucket whose deletes and overwrites can be
// undone, and rb --force still removes it, old versions and all.
func TestCLIMakeBucketVersioning(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	name := newBucketName(t, srv)

	r := s3sync(t, "mb", ep, "--versioning", "s3://"+name)
	wantCode(t, r, 0)
	wantMbOutput(t, r, srv, name, "make_bucket: "+name,
		"versioning: on for "+name+"; deleted and overwritten objects are kept as old versions")
	if got := versioningOf(t, srv, name); got != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning %q after mb --versioning, want Enabled", got)
	}

	srv.Put(t, name, "doc.txt", "first", nil)
	srv.Put(t, name, "doc.txt", "second", nil)
	srv.Put(t, name, "dir/other.txt", "x", nil)
	r = s3sync(t, "rb", ep, "--force", "s3://"+name)
	wantCode(t, r, 0)
	// 3 versions, and the 2 delete markers deleting the objects left.
	wantLines(t, r, "delete: 5 old versions and delete markers of "+name+" (the bucket kept versions)", "remove_bucket: "+name)
	if bucketExists(t, srv, name) {
		t.Fatal("rb --force left the versioned bucket")
	}
}

// A bucket one already has is made backup-grade by mb --versioning; plain
// mb still fails on it, as aws s3 mb does.
func TestCLIMakeBucketVersioningExisting(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	name := newBucketName(t, srv)
	if r := s3sync(t, "mb", ep, "s3://"+name); r.code != 0 {
		t.Fatalf("first mb\n%s", r)
	}
	srv.Put(t, name, "kept.txt", "kept", nil)

	r := s3sync(t, "mb", ep, "s3://"+name)
	wantCode(t, r, 1)

	r = s3sync(t, "mb", ep, "--versioning", "s3://"+name)
	wantCode(t, r, 0)
	wantMbOutput(t, r, srv, name,
		"make_bucket: "+name+" already exists and is yours; turning on versioning and adding the lifecycle rule",
		"versioning: on for "+name+"; deleted and overwritten objects are kept as old versions")
	if got := versioningOf(t, srv, name); got != types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning %q, want Enabled", got)
	}
	if body, _ := srv.Get(t, name, "kept.txt"); body != "kept" {
		t.Errorf("kept.txt holds %q after mb --versioning", body)
	}
}

// When the store will not turn versioning on, mb --versioning fails with
// one line that says the bucket exists without it.
func TestCLIMakeBucketVersioningRefused(t *testing.T) {
	srv := s3test.StartUnversioned(t)
	name := newBucketName(t, srv)
	env := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + srv.SecretKey}

	r := s3syncEnv(t, env, "mb", "--endpoint-url="+srv.Endpoint, "--versioning", "s3://"+name)
	wantCode(t, r, 1)
	wantMbOutput(t, r, srv, name, "make_bucket: "+name)
	lines := r.errLines()
	last := lines[len(lines)-1]
	for _, part := range []string{"s3sync: " + name + " was created, but versioning is NOT on", "not implemented by this store"} {
		if !strings.Contains(last, part) {
			t.Fatalf("last stderr line %q lacks %q\n%s", last, part, r)
		}
	}
	if !bucketExists(t, srv, name) {
		t.Fatal("the bucket is gone")
	}
	if got := versioningOf(t, srv, name); got != "" {
		t.Errorf("versioning %q, want never turned on", got)
	}
}

var lsObject = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +(\d+(?:\.\d)? (?:[KMGTPE]iB|B|Bytes)|\d+) (.+)$`)

func TestCLILs(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	srv.Put(t, b, "top.txt", strings.Repeat("x", 1024), nil)
	srv.Put(t, b, "sub/x.txt", "xx", nil)
	srv.Put(t, b, "sub/deeper/y.txt", "yyy", nil)

	t.Run("buckets", func(t *testing.T) {
		r := s3sync(t, "ls", ep)
		wantCode(t, r, 0)
		re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ` + b + `$`)
		found := false
		for _, l := range r.lines() {
			found = found || re.MatchString(l)
		}
		if !found {
			t.Fatalf("no \"DATE TIME %s\" line\n%s", b, r)
		}
	})

	// objects parses ls output, in its order, into "NAME SIZE" and
	// "PRE NAME" entries.
	objects := func(t *testing.T, r result) []string {
		t.Helper()
		var out []string
		for l := range strings.Lines(r.stdout) {
			l = strings.TrimSuffix(l, "\n")
			if name, ok := strings.CutPrefix(strings.TrimLeft(l, " "), "PRE "); ok {
				if !strings.HasPrefix(l, strings.Repeat(" ", 27)+"PRE ") {
					t.Fatalf("PRE line %q is not aligned as the AWS CLI's", l)
				}
				out = append(out, "PRE "+name)
				continue
			}
			m := lsObject.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("unexpected ls line %q\n%s", l, r)
			}
			out = append(out, m[2]+" "+m[1])
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"s3://" + b + "/"}, []string{"PRE sub/", "top.txt 1024"}},
		{[]string{"s3://" + b}, []string{"PRE sub/", "top.txt 1024"}},
		{[]string{"s3://" + b + "/sub/"}, []string{"PRE deeper/", "x.txt 2"}},
		{[]string{"s3://" + b + "/sub"}, []string{"PRE sub/"}},
		{[]string{"s3://" + b + "/to"}, []string{"top.txt 1024"}},
		{[]string{"--recursive", "s3://" + b + "/"}, []string{"sub/deeper/y.txt 3", "sub/x.txt 2", "top.txt 1024"}},
		{[]string{"--recursive", "s3://" + b + "/sub/"}, []string{"sub/deeper/y.txt 3", "sub/x.txt 2"}},
		{[]string{"--human-readable", "s3://" + b + "/"}, []string{"PRE sub/", "top.txt 1.0 KiB"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := s3sync(t, append([]string{"ls", ep}, tc.args...)...)
			wantCode(t, r, 0)
			got := objects(t, r)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("ls entries %q, want %q\n%s", got, tc.want, r)
			}
		})
	}

	t.Run("summarize", func(t *testing.T) {
		r := s3sync(t, "ls", ep, "--recursive", "--human-readable", "--summarize", "s3://"+b+"/")
		wantCode(t, r, 0)
		out := strings.TrimRight(r.stdout, "\n")
		lines := strings.Split(out, "\n")
		if len(lines) < 2 {
			t.Fatalf("too short\n%s", r)
		}
		tail := lines[len(lines)-2:]
		if strings.TrimSpace(tail[0]) != "Total Objects: 3" || strings.TrimSpace(tail[1]) != "Total Size: 1.0 KiB" {
			t.Fatalf("summary lines %q\n%s", tail, r)
		}
	})
}

func TestCLIMakeRemoveBucket(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	name := "clitest" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()))
	t.Cleanup(func() {
		if bucketExists(t, srv, name) {
			s3sync(t, "rb", ep, "--force", "s3://"+name)
		}
	})

	r := s3sync(t, "mb", ep, "s3://"+name)
	wantCode(t, r, 0)
	// A store without public access blocks or lifecycle rules earns
	// warnings, no failure.
	wantMbOutput(t, r, srv, name, "make_bucket: "+name)
	if !bucketExists(t, srv, name) {
		t.Fatal("mb did not create the bucket")
	}

	r = s3sync(t, "mb", ep, "s3://"+name)
	wantCode(t, r, 1)
	wantOneErrLine(t, r, name)
	if r.stdout != "" {
		t.Fatalf("second mb printed\n%s", r)
	}

	srv.Put(t, name, "a/b.txt", "content", nil)
	r = s3sync(t, "rb", ep, "s3://"+name)
	wantCode(t, r, 1)
	wantOneErrLine(t, r, name, "--force")
	if !bucketExists(t, srv, name) {
		t.Fatal("rb without --force removed a non-empty bucket")
	}

	r = s3sync(t, "rb", ep, "--force", "s3://"+name)
	wantCode(t, r, 0)
	wantLines(t, r, "remove_bucket: "+name)
	if bucketExists(t, srv, name) {
		t.Fatal("rb --force left the bucket")
	}

	r = s3sync(t, "rb", ep, "s3://"+name)
	wantCode(t, r, 1)
	wantOneErrLine(t, r, name, "does not exist")
}
