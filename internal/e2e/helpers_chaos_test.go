package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/remote"
)

// newMountVia is newMount with the mount talking to endpoint (a proxy in
// front of the test server) instead of the server itself.
func newMountVia(t *testing.T, bucket, endpoint string, extra ...string) *mount {
	t.Helper()
	m := newMount(t, bucket, extra...)
	if m.args[1] != "--endpoint-url" {
		t.Fatalf("newMount's arguments changed shape: %q", m.args)
	}
	m.args[2] = endpoint
	return m
}

// waitSettled waits until status shows nothing pending or in flight on two
// polls a second apart, so that a record made just before the first poll
// (a FUSE release arrives after close returns) is not missed.
func (m *mount) waitSettled(timeout time.Duration) statusReport {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m.waitDrained(time.Until(deadline))
		time.Sleep(time.Second)
		if r2 := m.status(); r2.Pending == 0 && r2.InFlight == 0 {
			return r2
		}
	}
}

// bucketEqualsWorkdir compares the objects under url (s3://BUCKET/PREFIX)
// with WORKDIR, reading every object: a regular file's object has the same
// size and MD5, x-amz-meta-mtime equal to the file's mtime and
// x-amz-meta-mode, -uid, -gid equal to its permission bits (07777) and
// owner; a symlink's object NAME.rclonelink holds its target and its own
// mtime; every empty directory has a marker "dir/", and every marker names
// a directory. Nothing else is in the bucket. It returns one line per
// difference, sorted, as `s3sync verify` prints them.
func bucketEqualsWorkdir(t *testing.T, srv *s3test.Server, url, workdir string) []string {
	t.Helper()
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	type file struct {
		size     int64
		md5      string
		mtime    time.Time
		mode     uint32 // 07777
		uid, gid uint32
		link     bool   // a symlink: md5 is its target's
		target   string // link
	}
	local := map[string]file{} // by key: a link's ends in .rclonelink
	dirs := map[string]bool{}
	var empty []string
	err := filepath.WalkDir(workdir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(workdir, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			dirs[rel] = true
			if ents, err := os.ReadDir(path); err == nil && len(ents) == 0 && rel != "." {
				empty = append(empty, rel)
			}
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			return err
		}
		mtime := time.Unix(st.Mtim.Unix())
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			sum := md5.Sum([]byte(target))
			local[rel+".rclonelink"] = file{size: int64(len(target)), md5: hex.EncodeToString(sum[:]), mtime: mtime, link: true, target: target}
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := md5.Sum(b)
			local[rel] = file{size: int64(len(b)), md5: hex.EncodeToString(sum[:]), mtime: mtime,
				mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", workdir, err)
	}

	var diffs []string
	ctx := context.Background()
	c := srv.Client()
	seen := map[string]bool{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list %s: %v", url, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			rel := strings.TrimPrefix(key, prefix)
			if strings.HasSuffix(rel, "/") {
				seen[rel] = true
				if !dirs[strings.TrimSuffix(rel, "/")] {
					diffs = append(diffs, fmt.Sprintf("%s: directory marker for a directory not in WORKDIR", rel))
				}
				continue
			}
			seen[rel] = true
			l, ok := local[rel]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s: only in the bucket (%d bytes)", rel, aws.ToInt64(o.Size)))
				continue
			}
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			h := md5.New()
			n, err := io.Copy(h, out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatalf("read %s: %v", key, err)
			}
			if sum := hex.EncodeToString(h.Sum(nil)); n != l.size || sum != l.md5 {
				what := "content"
				if l.link {
					what = fmt.Sprintf("link target (WORKDIR %q)", l.target)
				}
				diffs = append(diffs, fmt.Sprintf("%s: %s differs: bucket %d bytes md5 %s, WORKDIR %d bytes md5 %s", rel, what, n, sum, l.size, l.md5))
				continue
			}
			mt, ok := remote.ParseMtime(out.Metadata["mtime"])
			if !ok || !mt.Equal(l.mtime) {
				diffs = append(diffs, fmt.Sprintf("%s: mtime differs: bucket %q, WORKDIR %s", rel, out.Metadata["mtime"], remote.FormatMtime(l.mtime)))
			}
			if l.link {
				continue
			}
			mode, err := strconv.ParseUint(out.Metadata["mode"], 8, 32)
			if err != nil || uint32(mode)&0o7777 != l.mode {
				diffs = append(diffs, fmt.Sprintf("%s: mode differs: bucket x-amz-meta-mode %q, WORKDIR %04o", rel, out.Metadata["mode"], l.mode))
			}
			if owner := fmt.Sprintf("%d:%d", l.uid, l.gid); out.Metadata["uid"]+":"+out.Metadata["gid"] != owner {
				diffs = append(diffs, fmt.Sprintf("%s: owner differs: bucket %q:%q, WORKDIR %s", rel, out.Metadata["uid"], out.Metadata["gid"], owner))
			}
		}
	}
	for rel, l := range local {
		if !seen[rel] {
			diffs = append(diffs, fmt.Sprintf("%s: missing from the bucket (%d bytes)", rel, l.size))
		}
	}
	for _, d := range empty {
		if !seen[d+"/"] {
			diffs = append(diffs, fmt.Sprintf("%s/: empty directory without a marker in the bucket", d))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// verifyCommand runs `s3sync verify --links --owner WORKDIR URL` and
// returns its exit code and output. A verify that cannot run at all (no
// such command, a flag it does not know: exit 2) fails the test rather than
// dropping the check.
func verifyCommand(t *testing.T, endpoint, workdir, url string) (exit int, out string) {
	t.Helper()
	b, err := exec.Command(bin, "verify", "--links", "--owner", "--endpoint-url", endpoint, workdir, url).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return 1, string(b)
	} else if err != nil {
		t.Fatalf("s3sync verify could not run: %v\n%s", err, b)
	}
	return 0, string(b)
}

// restoreDiffs restores url into a new folder with `s3sync reconcile
// --links` and compares it with workdir: the same names with the same
// types; files with the same content, mtime and permission bits; links with
// the same target and mtime; every directory, empty ones included. What a
// person gets back is the point of the backup.
func restoreDiffs(t *testing.T, endpoint, url, workdir string) []string {
	t.Helper()
	restored := t.TempDir()
	out, err := exec.Command(bin, "reconcile", "--links", "--endpoint-url", endpoint, url, restored).CombinedOutput()
	if err != nil {
		return []string{fmt.Sprintf("restore with reconcile --links: %v\n%s", err, out)}
	}
	want, got := treeOf(t, workdir), treeOf(t, restored)
	// Special files are not stored, nor are directories holding only them
	// unless they kept the marker of when they were empty.
	special := specialOnly(workdir)
	var diffs []string
	for rel, w := range want {
		if g, ok := got[rel]; !ok && special[rel] {
			continue
		} else if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: not restored (WORKDIR: %s)", rel, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: restored as %s, WORKDIR has %s", rel, g, w))
		}
	}
	for rel, g := range got {
		if _, ok := want[rel]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: restored (%s) but not in WORKDIR", rel, g))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// treeOf describes each entry below root, never following links, in a
// line that two trees holding the same thing share.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			tree[rel] = "a directory"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			tree[rel] = fmt.Sprintf("a link to %q, mtime %s", target, remote.FormatMtime(info.ModTime()))
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			tree[rel] = fmt.Sprintf("a file of %d bytes, md5 %x, mode %04o, mtime %s", len(b), md5.Sum(b), info.Mode().Perm(), remote.FormatMtime(info.ModTime()))
		default:
			tree[rel] = "a " + info.Mode().Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return tree
}
