package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
)

// End-to-end tests of the s3sync binary against a real S3 server: what a
// user sees (stdout, stderr, exit code) and what lands in the bucket.

func TestCLIReconcileUploadOutput(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "a.txt"), "alpha")
	testfs.WriteFile(t, filepath.Join(dir, "sub", "b.txt"), "bravo!")

	// --dryrun shows what would happen and changes nothing.
	r := s3sync(t, "reconcile", ep, "--dryrun", dir, "s3://"+b+"/pfx/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"(dryrun) upload: "+dir+"/a.txt to s3://"+b+"/pfx/a.txt",
		"(dryrun) upload: "+dir+"/sub/b.txt to s3://"+b+"/pfx/sub/b.txt")
	wantSummary(t, r, "dry run", "2 operations")
	if got := srv.Objects(t, b, ""); len(got) != 0 {
		t.Fatalf("--dryrun wrote %v", got)
	}

	r = s3sync(t, "reconcile", ep, dir, "s3://"+b+"/pfx/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"upload: "+dir+"/a.txt to s3://"+b+"/pfx/a.txt",
		"upload: "+dir+"/sub/b.txt to s3://"+b+"/pfx/sub/b.txt")
	wantSummary(t, r, "uploaded 2 files")
	if got, _ := srv.Get(t, b, "pfx/sub/b.txt"); got != "bravo!" {
		t.Fatalf("pfx/sub/b.txt holds %q", got)
	}

	// Nothing changed: nothing on stdout, only the summary. Like the AWS
	// CLI's, a prefix without its slash is the same folder.
	r = s3sync(t, "reconcile", ep, dir, "s3://"+b+"/pfx")
	wantCode(t, r, 0)
	wantLines(t, r)
	wantSummary(t, r, "nothing to do")

	// The "sync" alias and --delete, as the AWS CLI spells them.
	os.Remove(filepath.Join(dir, "a.txt"))
	r = s3sync(t, "sync", ep, "--delete", dir, "s3://"+b+"/pfx/")
	wantCode(t, r, 0)
	wantLines(t, r, "delete: s3://"+b+"/pfx/a.txt")
	wantSummary(t, r, "deleted 1")
	if got := srv.Objects(t, b, ""); len(got) != 1 {
		t.Fatalf("after --delete the bucket holds %v", got)
	}
}

func TestCLIQuietAndOnlyShowErrors(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "a.txt"), "alpha")

	r := s3sync(t, "reconcile", ep, "--quiet", dir, "s3://"+b+"/")
	wantCode(t, r, 0)
	if r.stdout != "" || r.stderr != "" {
		t.Fatalf("--quiet printed something\n%s", r)
	}
	if got := srv.Objects(t, b, ""); got["a.txt"] != 5 {
		t.Fatalf("--quiet did not upload: %v", got)
	}

	// --only-show-errors: a successful transfer prints nothing, a skipped
	// FIFO prints its warning.
	testfs.WriteFile(t, filepath.Join(dir, "b.txt"), "bravo")
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = s3sync(t, "reconcile", ep, "--only-show-errors", dir, "s3://"+b+"/")
	wantCode(t, r, 2)
	if r.stdout != "" {
		t.Fatalf("--only-show-errors printed transfers\n%s", r)
	}
	for _, l := range r.errLines() {
		if !strings.HasPrefix(l, "warning: ") && !strings.HasPrefix(l, "s3sync: ") {
			t.Fatalf("--only-show-errors printed %q, not a warning or error\n%s", l, r)
		}
	}
	if !strings.Contains(r.stderr, "warning: skipping "+dir+"/pipe") {
		t.Fatalf("no warning about the FIFO\n%s", r)
	}
	noProgress(t, r)
	if got := srv.Objects(t, b, ""); got["b.txt"] != 5 {
		t.Fatalf("b.txt not uploaded: %v", got)
	}
}

func TestCLISkippedExitsTwo(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint

	t.Run("fifo", func(t *testing.T) {
		b := srv.NewBucket(t)
		dir := t.TempDir()
		testfs.WriteFile(t, filepath.Join(dir, "ok.txt"), "fine")
		if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := s3sync(t, "reconcile", ep, dir, "s3://"+b+"/")
		wantCode(t, r, 2)
		wantLines(t, r, "upload: "+dir+"/ok.txt to s3://"+b+"/ok.txt")
		if !strings.Contains(r.stderr, "warning: skipping "+dir+"/pipe") || !strings.Contains(r.stderr, "1 skipped") {
			t.Fatalf("stderr should name the FIFO and count it\n%s", r)
		}
	})

	t.Run("key over 1024 bytes", func(t *testing.T) {
		b := srv.NewBucket(t)
		dir := t.TempDir()
		testfs.WriteFile(t, filepath.Join(dir, "ok.txt"), "fine")
		seg := strings.Repeat("k", 250)
		long := filepath.Join(dir, seg, seg, seg, seg, seg)
		testfs.WriteFile(t, long, "too deep")
		r := s3sync(t, "reconcile", ep, dir, "s3://"+b+"/")
		wantCode(t, r, 2)
		wantLines(t, r, "upload: "+dir+"/ok.txt to s3://"+b+"/ok.txt")
		if !strings.Contains(r.stderr, "warning: skipping "+long) || !strings.Contains(r.stderr, "1024") {
			t.Fatalf("stderr should name the long path and the limit\n%s", r)
		}
		if got := srv.Objects(t, b, ""); len(got) != 1 {
			t.Fatalf("bucket holds %v, want only ok.txt", got)
		}
	})
}

func TestCLIUsageErrors(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string // each in stderr
	}{
		{"one arg", []string{"reconcile", dir}, []string{"2 arg"}},
		{"three args", []string{"reconcile", dir, "s3://b/", "s3://c/"}, []string{"2 arg"}},
		{"unknown flag", []string{"reconcile", "--no-such-flag", dir, "s3://b/"}, []string{"--no-such-flag"}},
		{"bad storage class", []string{"reconcile", "--storage-class", "FOO", dir, "s3://b/"}, []string{"FOO", "STANDARD", "GLACIER"}},
		{"both local", []string{"reconcile", dir, t.TempDir()}, []string{"s3://"}},
		{"size-only and exact-timestamps", []string{"reconcile", "--size-only", "--exact-timestamps", "s3://b/", dir}, []string{"--size-only", "--exact-timestamps"}},
		{"unknown command", []string{"frobnicate"}, []string{"frobnicate"}},
		{"mb without bucket", []string{"mb"}, []string{"arg"}},
		{"ls two args", []string{"ls", "s3://a", "s3://b"}, []string{"arg"}},
		{"ls local path", []string{"ls", dir}, []string{"s3://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s3sync(t, append(tc.args, ep)...)
			wantCode(t, r, 2)
			if r.stdout != "" {
				t.Fatalf("usage error printed to stdout\n%s", r)
			}
			lines := r.errLines()
			if len(lines) == 0 || len(lines) > 2 || !strings.HasPrefix(lines[0], "s3sync: ") {
				t.Fatalf("want one line saying what is wrong (and maybe a pointer to --help)\n%s", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Fatalf("%q lacks %q\n%s", lines[0], w, r)
				}
			}
		})
	}
}

func TestCLICannotRun(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "a.txt"), "alpha")
	missing := "nosuchbucket" + strings.ToLower(fmt.Sprint(time.Now().UnixNano()))

	t.Run("missing bucket, upload", func(t *testing.T) {
		r := s3sync(t, "reconcile", ep, dir, "s3://"+missing+"/x/")
		wantCode(t, r, 1)
		wantOneErrLine(t, r, missing, "does not exist", "s3sync mb")
		if r.stdout != "" {
			t.Fatalf("stdout: %q", r.stdout)
		}
	})
	t.Run("missing bucket, download", func(t *testing.T) {
		r := s3sync(t, "reconcile", ep, "s3://"+missing+"/", t.TempDir())
		wantCode(t, r, 1)
		wantOneErrLine(t, r, missing, "does not exist", "s3sync mb")
	})
	t.Run("missing bucket, ls", func(t *testing.T) {
		r := s3sync(t, "ls", ep, "s3://"+missing+"/")
		wantCode(t, r, 1)
		wantOneErrLine(t, r, missing, "does not exist")
	})
	t.Run("no credentials", func(t *testing.T) {
		env := []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED=true"}
		r := s3syncEnv(t, env, "ls", ep, "s3://anybucket/")
		wantCode(t, r, 1)
		wantOneErrLine(t, r, "credentials")
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		r := s3sync(t, "reconcile", "--endpoint-url", "http://127.0.0.1:1", dir, "s3://anybucket/")
		wantCode(t, r, 1)
		wantOneErrLine(t, r, "unreachable", "--endpoint-url")
	})
	t.Run("unreachable endpoint, ls", func(t *testing.T) {
		r := s3sync(t, "ls", "--endpoint-url", "http://127.0.0.1:1")
		wantCode(t, r, 1)
		wantOneErrLine(t, r, "unreachable", "--endpoint-url")
	})
}

func TestCLISecretsNeverPrinted(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	b := srv.NewBucket(t)
	srv.Put(t, b, "a.txt", "alpha", nil)
	dir := t.TempDir()
	testfs.WriteFile(t, filepath.Join(dir, "up.txt"), "up")
	const wrong = "wrongSecretDoNotPrint0123456789abcdefXYZ"
	env := []string{"AWS_SECRET_ACCESS_KEY=" + wrong}
	for _, args := range [][]string{
		{"reconcile", ep, dir, "s3://" + b + "/"},
		{"reconcile", ep, "s3://" + b + "/", t.TempDir()},
		{"ls", ep, "s3://" + b + "/"},
		{"ls", ep},
		{"mb", ep, "s3://" + b + "x"},
		{"rb", ep, "--force", "s3://" + b},
	} {
		r := s3syncEnv(t, env, args...)
		if r.code != 1 {
			t.Errorf("exit code %d with a wrong secret, want 1\n%s", r.code, r)
		}
		for _, secret := range []string{wrong, srv.SecretKey} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("output contains a secret\n%s", r)
			}
		}
		if !strings.Contains(r.stderr, "credentials") && !strings.Contains(r.stderr, "denied") {
			t.Errorf("stderr should say the credentials were refused\n%s", r)
		}
	}
	if !bucketExists(t, srv, b) {
		t.Fatal("rb with a wrong secret removed the bucket")
	}
}

func TestCLIFilterOrder(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	dir := t.TempDir()
	for _, f := range []string{"a.txt", "b.log", "sub/c.txt", "sub/d.bin"} {
		testfs.WriteFile(t, filepath.Join(dir, f), f)
	}

	// Last match wins across --exclude and --include.
	b := srv.NewBucket(t)
	r := s3sync(t, "reconcile", ep, "--exclude", "*", "--include", "*.txt", dir, "s3://"+b+"/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"upload: "+dir+"/a.txt to s3://"+b+"/a.txt",
		"upload: "+dir+"/sub/c.txt to s3://"+b+"/sub/c.txt")

	b2 := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, "--include", "*.txt", "--exclude", "*", dir, "s3://"+b2+"/")
	wantCode(t, r, 0)
	wantLines(t, r)
	wantSummary(t, r, "nothing to do")
	if got := srv.Objects(t, b2, ""); len(got) != 0 {
		t.Fatalf("--include then --exclude '*' uploaded %v", got)
	}

	// Excluded paths are never deleted.
	r = s3sync(t, "reconcile", ep, "--delete", "--exclude", "*.txt", t.TempDir(), "s3://"+b+"/")
	wantCode(t, r, 0)
	wantLines(t, r)
	if got := srv.Objects(t, b, ""); len(got) != 2 {
		t.Fatalf("--delete removed excluded objects: %v", got)
	}
}

func TestCLIRoundTrip(t *testing.T) {
	srv := s3test.Get(t)
	ep := "--endpoint-url=" + srv.Endpoint
	src := srv.NewBucket(t)
	mtime := time.Unix(1600000000, 500000000)
	srv.Put(t, src, "doc.txt", "hello world", map[string]string{"mtime": remote.FormatMtime(mtime)})
	srv.Put(t, src, "dir/nested.bin", "nested", map[string]string{"mtime": remote.FormatMtime(mtime.Add(time.Hour))})

	// s3 → local restores content and mtime.
	local := t.TempDir()
	r := s3sync(t, "reconcile", ep, "s3://"+src+"/", local)
	wantCode(t, r, 0)
	wantLines(t, r,
		"download: s3://"+src+"/dir/nested.bin to "+local+"/dir/nested.bin",
		"download: s3://"+src+"/doc.txt to "+local+"/doc.txt")
	wantSummary(t, r, "downloaded 2 files")
	if got := readFile(t, filepath.Join(local, "doc.txt")); got != "hello world" {
		t.Fatalf("doc.txt holds %q", got)
	}
	for rel, want := range map[string]time.Time{"doc.txt": mtime, "dir/nested.bin": mtime.Add(time.Hour)} {
		info, err := os.Stat(filepath.Join(local, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !info.ModTime().Equal(want) {
			t.Fatalf("%s mtime %v, want %v", rel, info.ModTime(), want)
		}
	}

	// local → s3 stores the mtime as x-amz-meta-mtime.
	dst := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, local, "s3://"+dst+"/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"upload: "+local+"/dir/nested.bin to s3://"+dst+"/dir/nested.bin",
		"upload: "+local+"/doc.txt to s3://"+dst+"/doc.txt")
	body, meta := srv.Get(t, dst, "doc.txt")
	if body != "hello world" {
		t.Fatalf("round trip doc.txt holds %q", body)
	}
	if got, ok := remote.ParseMtime(meta["mtime"]); !ok || !got.Equal(mtime) {
		t.Fatalf("round trip x-amz-meta-mtime %q, want %v", meta["mtime"], mtime)
	}

	// s3 → s3 copies server-side.
	cp := srv.NewBucket(t)
	r = s3sync(t, "reconcile", ep, "s3://"+dst+"/", "s3://"+cp+"/copied/")
	wantCode(t, r, 0)
	wantLines(t, r,
		"copy: s3://"+dst+"/dir/nested.bin to s3://"+cp+"/copied/dir/nested.bin",
		"copy: s3://"+dst+"/doc.txt to s3://"+cp+"/copied/doc.txt")
	wantSummary(t, r, "copied 2 objects")
	if body, _ := srv.Get(t, cp, "copied/doc.txt"); body != "hello world" {
		t.Fatalf("copied doc.txt holds %q", body)
	}

	// Re-runs find nothing to do, in every direction.
	for _, args := range [][]string{
		{"s3://" + src + "/", local},
		{local, "s3://" + dst + "/"},
		{"s3://" + dst + "/", "s3://" + cp + "/copied/"},
	} {
		r = s3sync(t, append([]string{"reconcile", ep}, args...)...)
		wantCode(t, r, 0)
		wantLines(t, r)
		wantSummary(t, r, "nothing to do")
	}

	// --delete on a download removes the local file the bucket lacks.
	if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(src), Key: aws.String("doc.txt")}); err != nil {
		t.Fatal(err)
	}
	r = s3sync(t, "reconcile", ep, "--delete", "s3://"+src+"/", local)
	wantCode(t, r, 0)
	wantLines(t, r, "delete: "+local+"/doc.txt")
	if _, err := os.Stat(filepath.Join(local, "doc.txt")); !os.IsNotExist(err) {
		t.Fatalf("doc.txt still there: %v", err)
	}
}

func TestCLIProfile(t *testing.T) {
	srv := s3test.Get(t)
	b := srv.NewBucket(t)
	srv.Put(t, b, "from-profile.txt", "p", nil)
	dir := t.TempDir()
	config := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	testfs.WriteFile(t, config, "[profile clitest]\nregion = "+srv.Region+"\nendpoint_url = "+srv.Endpoint+"\n")
	testfs.WriteFile(t, creds, "[clitest]\naws_access_key_id = "+srv.AccessKey+"\naws_secret_access_key = "+srv.SecretKey+"\n")
	// Only the profile knows the keys and the endpoint.
	env := []string{"AWS_CONFIG_FILE=" + config, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"}

	r := s3syncEnv(t, env, "ls", "--profile", "clitest", "s3://"+b+"/")
	wantCode(t, r, 0)
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), " from-profile.txt") {
		t.Fatalf("ls with a profile\n%s", r)
	}

	local := t.TempDir()
	r = s3syncEnv(t, env, "reconcile", "--profile", "clitest", "s3://"+b+"/", local)
	wantCode(t, r, 0)
	wantLines(t, r, "download: s3://"+b+"/from-profile.txt to "+local+"/from-profile.txt")

	// AWS_PROFILE picks the profile as well.
	r = s3syncEnv(t, append(env, "AWS_PROFILE=clitest"), "ls", "s3://"+b+"/")
	wantCode(t, r, 0)

	r = s3syncEnv(t, env, "ls", "--profile", "nosuchprofile", "s3://"+b+"/")
	wantCode(t, r, 1)
	wantOneErrLine(t, r, "nosuchprofile")
}
