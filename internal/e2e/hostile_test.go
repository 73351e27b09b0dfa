package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3sync/s3sync/internal/s3test"
)

// A hostile bucket: whoever can write the bucket plants keys, link
// objects, markers and metadata. Nothing they plant may change anything
// outside WORKDIR (a mount with --pull) or DST (a restore). Each test keeps
// a sentinel tree outside and compares it byte for byte, mode, owner and
// mtime, before and after.

// sentinel makes a tree outside any WORKDIR or DST: a folder with a file
// whose content the attacker knows, a subfolder, and returns its root.
func sentinel(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outside")
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"known": "K", "sub/secret": "S"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Unix(1_500_000_000, 0)
	for _, p := range []string{"known", "sub/secret", "sub", ""} {
		os.Chtimes(filepath.Join(dir, p), old, old)
	}
	return dir
}

// snapshot describes every entry below dir: type, mode, owner, size,
// mtime and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			out[p] = "error " + err.Error()
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			out[p] = "error " + err.Error()
			return nil
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			h := sha256.Sum256(b)
			desc += " sha256=" + hex.EncodeToString(h[:8])
		}
		out[p] = desc
		return nil
	})
	return out
}

// unchanged fails t if dir differs from before.
func unchanged(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := snapshot(t, dir)
	for p, d := range after {
		if before[p] != d {
			t.Errorf("outside changed: %s: %q, was %q", p, d, before[p])
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("outside changed: %s is gone", p)
		}
	}
}

// Pull: a link object to a folder outside, then keys below it, markers
// below it, and a known file's bytes below it (so it looks "in sync"),
// then changed, then deleted. WORKDIR gets the link; nothing is written
// through it, and each key is warned of once, not every round.
func TestHostilePullThroughLink(t *testing.T) {
	out := sentinel(t)
	before := snapshot(t, out)
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--settle=50ms", "--delete")
	m.withPull()
	p := "data/"
	srv.Put(t, bucket, p+"x.rclonelink", out, nil)
	srv.Put(t, bucket, p+"x/evil", "#!/bin/sh\necho owned\n", map[string]string{"mode": "100755"})
	srv.Put(t, bucket, p+"x/known", "K", nil)
	srv.Put(t, bucket, p+"x/sub/", "", map[string]string{"mode": "47777"})
	srv.Put(t, bucket, p+"x/new/dir/", "", nil)
	srv.Put(t, bucket, p+"ok", "fine", nil)
	m.start()
	m.waitFor("the pull to bring ok and the link x", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(m.workdir, "ok"))
		tg, _ := os.Readlink(filepath.Join(m.workdir, "x"))
		return string(b) == "fine" && tg == out
	})
	// Several rounds (--pull=300ms) with the same keys.
	time.Sleep(2 * time.Second)
	unchanged(t, out, before)
	srv.Put(t, bucket, p+"x/known", "CHANGED", nil)
	srv.Put(t, bucket, p+"ok", "fine2", nil)
	m.waitFor("the pull to bring ok's change", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(m.workdir, "ok"))
		return string(b) == "fine2"
	})
	unchanged(t, out, before)
	for _, k := range []string{"x/known", "x/evil"} {
		srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(p + k)})
	}
	srv.Put(t, bucket, p+"ok", "fine3", nil)
	m.waitFor("the pull to bring ok's second change", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(m.workdir, "ok"))
		return string(b) == "fine3"
	})
	unchanged(t, out, before)
	log := m.log.String()
	if n := strings.Count(log, `key=data/x/evil`); n != 1 {
		t.Errorf("x/evil warned of %d times in many rounds, want once:\n%s", n, firstLines(log, 40))
	}
	// x/known was warned of once per version (two ETags).
	if n := strings.Count(log, `key=data/x/known`); n != 2 {
		t.Errorf("x/known warned of %d times, want once per version (2):\n%s", n, firstLines(log, 40))
	}
	m.stop()
}

// Objects a and a.rclonelink together: the file is kept, the link is
// refused once; no conflict copy is made, round after round.
func TestHostilePullClash(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--settle=50ms")
	m.withPull()
	srv.Put(t, bucket, "data/a", "file", nil)
	srv.Put(t, bucket, "data/a.rclonelink", "/etc", nil)
	srv.Put(t, bucket, "data/b.rclonelink", "elsewhere", nil)
	srv.Put(t, bucket, "data/b/c", "below a link", nil)
	m.start()
	m.waitFor("a and the link b", 30*time.Second, func() bool {
		body, _ := os.ReadFile(filepath.Join(m.workdir, "a"))
		tg, _ := os.Readlink(filepath.Join(m.workdir, "b"))
		return string(body) == "file" && tg == "elsewhere"
	})
	time.Sleep(3 * time.Second) // ten rounds
	m.waitDrained(30 * time.Second)
	es, _ := os.ReadDir(m.workdir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "a b" {
		t.Errorf("WORKDIR holds %v, want a b (no conflict copies)", names)
	}
	keys := srv.Objects(t, bucket, "data/")
	if len(keys) != 4 {
		t.Errorf("the bucket holds %v, want the 4 keys put (no conflict copies uploaded)", keys)
	}
	if n := strings.Count(m.log.String(), "key=data/a.rclonelink"); n != 1 {
		t.Errorf("the clash was warned of %d times, want once:\n%s", n, firstLines(m.log.String(), 40))
	}
	m.stop()
}

// The state dir inside WORKDIR (WORKDIR = $HOME with the default state
// dir): never uploaded, and a pull never writes into it.
func TestHostileStateDirInsideWorkdir(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	m := newMount(t, bucket, "--settle=50ms", "--delete")
	m.withPull()
	// $HOME = WORKDIR, default state dir: drop --state-dir.
	for i, a := range m.args {
		if a == "--state-dir" {
			m.args = append(m.args[:i:i], m.args[i+2:]...)
			break
		}
	}
	m.stateDir = ""
	srv.Put(t, bucket, "data/.local/state/s3sync/evil", "planted", nil)
	srv.Put(t, bucket, "data/ok", "fine", nil)
	cmd := exec.Command(bin, m.args...)
	cmd.Env = append(os.Environ(), "HOME="+m.workdir, "XDG_STATE_HOME=")
	m.log = &logBuffer{}
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	m.waitFor("the pull to bring ok", 30*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(m.workdir, "ok"))
		return string(b) == "fine"
	})
	if err := os.WriteFile(filepath.Join(m.mountpoint, "mine"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.waitFor("mine to reach the bucket", 30*time.Second, func() bool {
		_, ok := srv.Objects(t, bucket, "data/")["data/mine"]
		return ok
	})
	time.Sleep(time.Second)
	if _, err := os.Stat(filepath.Join(m.workdir, ".local/state/s3sync/evil")); err == nil {
		t.Error("the pull wrote into the state dir")
	}
	for k := range srv.Objects(t, bucket, "data/.local/") {
		if k != "data/.local/state/s3sync/evil" {
			t.Errorf("the state dir was mirrored: %s", k)
		}
	}
}

// Restores (reconcile --links, with and without --metadata) from a bucket
// with a link to outside and keys below it, into a DST where such a link
// is already planted: nothing outside changes, the run says what it
// skipped, and a second restore does not write through the link the first
// made.
func TestHostileRestore(t *testing.T) {
	out := sentinel(t)
	before := snapshot(t, out)
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	url := "s3://" + bucket + "/data"
	p := "data/"
	srv.Put(t, bucket, p+"x.rclonelink", out, nil)
	srv.Put(t, bucket, p+"x/a/b/", "", map[string]string{"mode": "47777", "uid": "65534", "gid": "65534"})
	srv.Put(t, bucket, p+"x/known", "CHANGED", map[string]string{"mode": "104755"})
	srv.Put(t, bucket, p+"y/sub/new", "new", nil)
	srv.Put(t, bucket, p+"y/m/n/", "", map[string]string{"mode": "47777", "uid": "65534", "gid": "65534"})
	srv.Put(t, bucket, p+"z/", "", nil)
	srv.Put(t, bucket, p+"ok", "fine", nil)
	srv.Put(t, bucket, p+"nl\ndownload: s3://b/x to /etc/passwd", "forged", nil)
	for _, flags := range [][]string{{"--links"}, {"--links", "--metadata"}, {"--links", "--metadata", "--delete"}, {}} {
		t.Run(strings.Join(flags, " "), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			os.Mkdir(dst, 0o755)
			// Planted in DST before the restore: y leads outside.
			if err := os.Symlink(out, filepath.Join(dst, "y")); err != nil {
				t.Fatal(err)
			}
			for round := range 2 {
				args := append([]string{"reconcile", "--no-progress", "--endpoint-url", srv.Endpoint}, flags...)
				res, _ := exec.Command(bin, append(args, url, dst)...).CombinedOutput()
				unchanged(t, out, before)
				if b, _ := os.ReadFile(filepath.Join(dst, "ok")); string(b) != "fine" {
					t.Fatalf("round %d: ok not restored:\n%s", round, res)
				}
				for _, line := range strings.Split(string(res), "\n") {
					if strings.HasPrefix(line, "download: s3://b/x") {
						t.Errorf("a key forged an output line: %q", line)
					}
				}
				if round == 0 && !strings.Contains(string(res), `nl\ndownload`) {
					t.Errorf("the key with a newline is not shown quoted:\n%s", res)
				}
			}
		})
	}
}

// Random bucket content (keys with "..", links to outside and inside,
// markers, clashes, odd metadata) and random local links in DST: after a
// restore and a pull, the sentinel outside is unchanged.
func TestHostileRandomBucket(t *testing.T) {
	srv := s3test.Get(t)
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			out := sentinel(t)
			before := snapshot(t, out)
			bucket := srv.NewBucket(t)
			rng := rand.New(rand.NewPCG(uint64(seed), 19))
			names := []string{"a", "b", "x", "..", ".", "sub", "known", "a.rclonelink", "x.rclonelink", ""}
			targets := []string{out, out + "/sub", "../outside", "../../outside", "/", "a", "sub", ".", "..", "/etc"}
			metas := []map[string]string{nil, {"mode": "47777"}, {"mode": "120777"}, {"mtime": "9223372036854775807"}, {"uid": "0", "gid": "0", "mode": "104755"}}
			for range 40 {
				depth := 1 + rng.IntN(3)
				var parts []string
				for range depth {
					parts = append(parts, names[rng.IntN(len(names))])
				}
				key := "data/" + strings.Join(parts, "/")
				body := "K"
				switch rng.IntN(3) {
				case 0:
					key += ".rclonelink"
					body = targets[rng.IntN(len(targets))]
				case 1:
					key += "/"
					body = ""
				}
				srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
					Body: strings.NewReader(body), Metadata: metas[rng.IntN(len(metas))]})
			}
			dst := filepath.Join(t.TempDir(), "dst")
			os.MkdirAll(filepath.Join(dst, "b"), 0o755)
			for _, n := range []string{"a", "x", "sub"} {
				os.Symlink(targets[rng.IntN(len(targets))], filepath.Join(dst, n))
			}
			url := "s3://" + bucket + "/data"
			for _, flags := range [][]string{{"--links", "--metadata"}, {}} {
				args := append([]string{"reconcile", "--no-progress", "--endpoint-url", srv.Endpoint}, flags...)
				exec.Command(bin, append(args, url, dst)...).Run()
				unchanged(t, out, before)
			}
			m := newMount(t, bucket, "--settle=50ms", "--delete")
			m.withPull()
			os.MkdirAll(filepath.Join(m.workdir, "b"), 0o755)
			for _, n := range []string{"a", "x", "sub"} {
				os.Symlink(targets[rng.IntN(len(targets))], filepath.Join(m.workdir, n))
			}
			srv.Put(t, bucket, "data/zz-last", "last", nil)
			m.start()
			m.waitFor("the pull's first rounds", 30*time.Second, func() bool {
				b, _ := os.ReadFile(filepath.Join(m.workdir, "zz-last"))
				return string(b) == "last"
			})
			time.Sleep(time.Second)
			m.stop()
			unchanged(t, out, before)
		})
	}
}
