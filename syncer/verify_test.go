package syncer_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3sync/s3sync/cache"
	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/internal/testfs"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

func wantFindings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// crc64nvme is S3's x-amz-checksum-crc64nvme of b, computed here apart from
// the code under test.
func crc64nvme(b []byte) string {
	var out [8]byte
	binary.BigEndian.PutUint64(out[:], crc64.Checksum(b, crc64.MakeTable(0x9a6c9329ac4bc9b5)))
	return base64.StdEncoding.EncodeToString(out[:])
}

// putMultipart stores body in parts of 5 MiB with mtime as x-amz-meta-mtime
// and, with alg CRC64NVME, a full-object checksum (as s3sync's uploads
// carry), with CRC32 a composite checksum of the parts' (which leaves the
// content of the whole unknown).
func putMultipart(t *testing.T, e *synctest.Env, key string, body []byte, mtime time.Time, alg types.ChecksumAlgorithm) {
	t.Helper()
	ctx := context.Background()
	c := e.Srv.Client()
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(e.Bucket), Key: aws.String(key),
		Metadata: map[string]string{"mtime": remote.FormatMtime(mtime)}}
	withSum := alg == types.ChecksumAlgorithmCrc64nvme
	if withSum {
		in.ChecksumAlgorithm, in.ChecksumType = alg, types.ChecksumTypeFullObject
	} else {
		in.ChecksumAlgorithm, in.ChecksumType = alg, types.ChecksumTypeComposite
	}
	cr, err := c.CreateMultipartUpload(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	const ps = 5 << 20
	for n, off := int32(1), 0; off < len(body); n, off = n+1, off+ps {
		p := body[off:min(off+ps, len(body))]
		up := &s3.UploadPartInput{Bucket: aws.String(e.Bucket), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(p), ChecksumAlgorithm: alg}
		if withSum {
			up.ChecksumCRC64NVME = aws.String(crc64nvme(p))
		}
		out, err := c.UploadPart(ctx, up)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag,
			ChecksumCRC64NVME: up.ChecksumCRC64NVME, ChecksumCRC32: out.ChecksumCRC32})
	}
	done := &s3.CompleteMultipartUploadInput{Bucket: aws.String(e.Bucket), Key: aws.String(key), UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if withSum {
		done.ChecksumCRC64NVME, done.ChecksumType = aws.String(crc64nvme(body)), types.ChecksumTypeFullObject
	}
	if _, err := c.CompleteMultipartUpload(ctx, done); err != nil {
		t.Fatal(err)
	}
}

// flipByte changes one byte of a file and puts its mtime back: same size,
// same mtime, other content (what aws s3 sync cannot see).
func flipByte(t *testing.T, path string, at int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func TestVerify(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/a.txt", "alpha")
	testfs.WriteFile(t, dir+"/sub/b.txt", "bravo")
	testfs.WriteFile(t, dir+"/sub/deep/c.txt", "charlie")
	testfs.WriteFile(t, dir+"/sub-x.txt", "key order: after sub/ in a listing")
	url := "s3://" + e.Bucket + "/v"
	if sum, lines := e.Sync(dir, url, nil); sum.Uploaded != 4 {
		t.Fatalf("upload: %+v %q", sum, lines)
	}

	sum, lines := synctest.Verify(t, e.Client, dir, url, nil)
	wantFindings(t, "identical tree", lines)
	if !sum.Identical() || sum.Checked != 4 || sum.NotCheckable != 0 || sum.NoMtime != 0 || sum.Hashed != 4 {
		t.Errorf("identical tree: %+v", sum)
	}
	// The other way round, and a clone.
	clone := t.TempDir()
	e.Sync(url, clone, nil)
	for _, pair := range [][2]string{{url, dir}, {url, clone}, {dir, clone}} {
		if sum, lines := synctest.Verify(t, e.Client, pair[0], pair[1], nil); !sum.Identical() || sum.Checked != 4 || len(lines) != 0 {
			t.Errorf("verify %s %s: %+v %q", pair[0], pair[1], sum, lines)
		}
	}
	copyURL := "s3://" + e.Bucket + "/copy"
	e.Sync(url, copyURL, nil)
	if sum, lines := synctest.Verify(t, e.Client, url, copyURL, nil); !sum.Identical() || sum.Checked != 4 || len(lines) != 0 {
		t.Errorf("verify s3 to s3: %+v %q", sum, lines)
	}

	// One byte changed, size and mtime kept: reconcile sees nothing,
	// verify sees it.
	flipByte(t, dir+"/sub/b.txt", 2)
	if _, lines := e.Sync(dir, url, nil); len(lines) != 0 {
		t.Fatalf("reconcile was expected to miss the change, did %q", lines)
	}
	testfs.WriteFile(t, dir+"/new.txt", "only here")
	os.Remove(dir + "/a.txt")
	// Same content, another stored mtime.
	e.Srv.Put(t, e.Bucket, "v/sub/deep/c.txt", "charlie", map[string]string{"mtime": "1000000000.5"})
	sum, lines = synctest.Verify(t, e.Client, dir, url, nil)
	cst, _ := os.Stat(dir + "/sub/deep/c.txt")
	wantFindings(t, "after changes", lines,
		"only_dst a.txt",
		"only_src new.txt",
		"differs sub/b.txt: content differs",
		"differs sub/deep/c.txt: mtime differs ("+cst.ModTime().UTC().Format(time.RFC3339Nano)+" != 2001-09-09T01:46:40.5Z)")
	if sum.Identical() || sum.Checked != 3 || sum.Differ != 2 || sum.OnlySrc != 1 || sum.OnlyDst != 1 {
		t.Errorf("after changes: %+v", sum)
	}

	// A size that differs is reported without reading anything.
	testfs.WriteFile(t, dir+"/sub-x.txt", "longer")
	_, lines = synctest.Verify(t, e.Client, dir, url, func(o *syncer.VerifyOptions) {
		o.Filters = &syncer.Filters{}
		o.Filters.Add(false, "*")
		o.Filters.Add(true, "sub-x.txt")
	})
	wantFindings(t, "size, filtered", lines, "differs sub-x.txt: size 6 != 34")
}

func TestVerifyNoMtimeAndMultipart(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), (11<<20)/16)
	for name, alg := range map[string]types.ChecksumAlgorithm{"crc.bin": types.ChecksumAlgorithmCrc64nvme, "nocrc.bin": types.ChecksumAlgorithmCrc32} {
		if err := os.WriteFile(filepath.Join(dir, name), big, 0o644); err != nil {
			t.Fatal(err)
		}
		st, _ := os.Stat(filepath.Join(dir, name))
		putMultipart(t, e, "m/"+name, big, st.ModTime(), alg)
	}
	testfs.WriteFile(t, dir+"/plain.txt", "put by another tool")
	e.Srv.Put(t, e.Bucket, "m/plain.txt", "put by another tool", nil)
	url := "s3://" + e.Bucket + "/m"

	sum, lines := synctest.Verify(t, e.Client, dir, url, nil)
	wantFindings(t, "multipart", lines, "not_checkable nocrc.bin: content not checkable (multipart ETag and no stored CRC64NVME)")
	if !sum.Identical() || sum.Checked != 3 || sum.NotCheckable != 1 || sum.NoMtime != 1 {
		t.Errorf("multipart: %+v", sum)
	}

	// A multipart object whose content differs from the file's.
	flipByte(t, dir+"/crc.bin", 9<<20)
	_, lines = synctest.Verify(t, e.Client, dir, url, func(o *syncer.VerifyOptions) {
		o.Filters = &syncer.Filters{}
		o.Filters.Add(false, "*.txt")
	})
	wantFindings(t, "multipart changed", lines,
		"differs crc.bin: content differs",
		"not_checkable nocrc.bin: content not checkable (multipart ETag and no stored CRC64NVME)")

	// Multipart uploads by reconcile: checkable by the CRC64NVME the store
	// keeps of the whole object.
	small, err := remote.New(context.Background(), remote.Config{EndpointURL: e.Srv.Endpoint, MultipartThreshold: 5 << 20, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	up := "s3://" + e.Bucket + "/up"
	synctest.RunSync(t, small, dir, up, nil)
	sum, lines = synctest.Verify(t, small, dir, up, nil)
	if !sum.Identical() || sum.Checked != 3 || sum.NotCheckable != 0 || len(lines) != 0 {
		t.Errorf("after a multipart upload by reconcile: %+v %q", sum, lines)
	}
}

func TestVerifyChecksumCache(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	for _, n := range []string{"a", "b", "c"} {
		testfs.WriteFile(t, filepath.Join(dir, n+".txt"), "content of "+n)
	}
	url := "s3://" + e.Bucket + "/c"
	e.Sync(dir, url, nil)
	sums, err := state.OpenSums(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sums.Close()
	withCache := func(o *syncer.VerifyOptions) { o.Sums = sums }

	// Files changed less than RacyWindow before being hashed could change
	// again unseen in the same clock tick: their sums are not kept.
	sum, _ := synctest.Verify(t, e.Client, dir, url, withCache)
	if sum.Hashed != 3 || sum.HashCached != 0 {
		t.Errorf("first run: %+v", sum)
	}
	time.Sleep(cache.RacyWindow + 100*time.Millisecond)
	sum, _ = synctest.Verify(t, e.Client, dir, url, withCache)
	if sum.Hashed != 3 || sum.HashCached != 0 {
		t.Errorf("second run: %+v", sum)
	}
	sum, _ = synctest.Verify(t, e.Client, dir, url, withCache)
	if !sum.Identical() || sum.Hashed != 0 || sum.HashCached != 3 {
		t.Errorf("third run, from the cache: %+v", sum)
	}
	if err := sums.Flush(); err != nil {
		t.Fatal(err)
	}
	// A changed ctime (chmod to the same mode) invalidates an entry.
	if err := os.Chmod(dir+"/b.txt", 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ = synctest.Verify(t, e.Client, dir, url, withCache)
	if !sum.Identical() || sum.Hashed != 1 || sum.HashCached != 2 {
		t.Errorf("after chmod: %+v", sum)
	}
}

// reconcile --checksum: content decides, not times.
func TestReconcileChecksum(t *testing.T) {
	e := synctest.NewEnv(t)
	dir := t.TempDir()
	testfs.WriteFile(t, dir+"/a.txt", "alpha")
	testfs.WriteFile(t, dir+"/b.txt", "bravo")
	big := bytes.Repeat([]byte("0123456789abcdef"), (6<<20)/16)
	if err := os.WriteFile(dir+"/big.bin", big, 0o644); err != nil {
		t.Fatal(err)
	}
	small, err := remote.New(context.Background(), remote.Config{EndpointURL: e.Srv.Endpoint, MultipartThreshold: 5 << 20, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	url := "s3://" + e.Bucket + "/k"
	synctest.RunSync(t, small, dir, url, nil)
	checksum := func(o *syncer.Options) { o.Compare.Checksum = true }

	// One byte changed, size and mtime kept, in a single-part and in a
	// multipart object.
	flipByte(t, dir+"/a.txt", 0)
	flipByte(t, dir+"/big.bin", 5<<20+1)
	if _, lines := synctest.RunSync(t, small, dir, url, nil); len(lines) != 0 {
		t.Errorf("without --checksum: %q", lines)
	}
	_, lines := synctest.RunSync(t, small, dir, url, checksum)
	synctest.EqualLines(t, "--checksum", lines, "upload "+dir+"/a.txt", "upload "+dir+"/big.bin")
	if got, _ := e.Srv.Get(t, e.Bucket, "k/a.txt"); got != "\x9elpha" {
		t.Errorf("k/a.txt holds %q", got)
	}

	// Newer but the same content: not sent with --checksum.
	later := time.Now().Add(time.Hour)
	os.Chtimes(dir+"/b.txt", later, later)
	if _, lines := synctest.RunSync(t, small, dir, url, checksum); len(lines) != 0 {
		t.Errorf("--checksum sent a file with the same content: %q", lines)
	}
	if _, lines := synctest.RunSync(t, small, dir, url, nil); len(lines) != 1 {
		t.Errorf("without --checksum, the newer file was not sent: %q", lines)
	}

	// Download and copy directions.
	clone := t.TempDir()
	synctest.RunSync(t, small, url, clone, nil)
	flipByte(t, clone+"/b.txt", 1)
	_, lines = synctest.RunSync(t, small, url, clone, func(o *syncer.Options) { o.Compare.Checksum = true; o.DryRun = true })
	synctest.EqualLines(t, "--checksum download, dry run", lines, "download "+url+"/b.txt")
	_, lines = synctest.RunSync(t, small, url, clone, checksum)
	synctest.EqualLines(t, "--checksum download", lines, "download "+url+"/b.txt")
	copyURL := "s3://" + e.Bucket + "/copy"
	synctest.RunSync(t, small, url, copyURL, nil)
	if _, lines := synctest.RunSync(t, small, url, copyURL, checksum); len(lines) != 0 {
		t.Errorf("--checksum copy of identical objects: %q", lines)
	}
	e.Srv.Put(t, e.Bucket, "copy/a.txt", "ALPHA", nil)
	_, lines = synctest.RunSync(t, small, url, copyURL, checksum)
	synctest.EqualLines(t, "--checksum copy", lines, "copy "+url+"/a.txt")
	if sum, lines := synctest.Verify(t, small, dir, copyURL, nil); !sum.Identical() {
		t.Errorf("after --checksum copies: %+v %q", sum, lines)
	}
}

// A restore gives a file the object's mode: verify proves the bucket holds
// the file's permission bits where its objects say (x-amz-meta-mode), and
// the owner only when asked.
func TestVerifyMode(t *testing.T) {
	e := synctest.NewEnv(t)
	mtime := time.Unix(1700000000, 123456789)
	me := os.Getuid()
	cases := []struct {
		name   string
		local  os.FileMode // permission bits, chmod-ed
		body   string      // the object's; the file holds "alpha"
		meta   map[string]string
		owner  bool
		s3ToS3 bool // compare the object with a copy carrying meta, not with the file
		want   []string
	}{
		{name: "same", local: 0o644, meta: map[string]string{"mode": "100644"}},
		{name: "chmod", local: 0o600, meta: map[string]string{"mode": "100644"},
			want: []string{"metadata_differs f: mode 0600 != 0644"}},
		{name: "setuid", local: os.ModeSetuid | 0o755, meta: map[string]string{"mode": "100755"},
			want: []string{"metadata_differs f: mode 4755 != 0755"}},
		{name: "content too", local: 0o600, body: "alphA", meta: map[string]string{"mode": "100644"},
			want: []string{"differs f: content differs; mode 0600 != 0644"}},
		{name: "size differs: no HEAD, no mode", local: 0o600, body: "alpha!", meta: map[string]string{"mode": "100644"},
			want: []string{"differs f: size 5 != 6"}},
		{name: "no mode stored", local: 0o600},
		{name: "mode without file type", local: 0o640, meta: map[string]string{"mode": "644"},
			want: []string{"metadata_differs f: mode 0640 != 0644"}},
		{name: "owner not by default", local: 0o644, meta: map[string]string{"mode": "100644", "uid": "4242", "gid": "4343"}},
		{name: "owner", local: 0o644, owner: true, meta: map[string]string{"mode": "100644", "uid": "4242", "gid": fmt.Sprint(os.Getgid())},
			want: []string{fmt.Sprintf("metadata_differs f: uid %d != 4242", me)}},
		{name: "s3 to s3", s3ToS3: true, meta: map[string]string{"mode": "100600"},
			want: []string{"metadata_differs f: mode 0644 != 0600"}},
		{name: "s3 to s3, one without mode", s3ToS3: true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			testfs.WriteFile(t, dir+"/f", "alpha")
			if err := os.Chmod(dir+"/f", c.local); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(dir+"/f", mtime, mtime); err != nil {
				t.Fatal(err)
			}
			meta := map[string]string{"mtime": remote.FormatMtime(mtime)}
			for k, v := range c.meta {
				meta[k] = v
			}
			body := cmp.Or(c.body, "alpha")
			url := fmt.Sprintf("s3://%s/%d", e.Bucket, i)
			src := dir
			if c.s3ToS3 {
				src = url + "/src"
				e.Srv.Put(t, e.Bucket, fmt.Sprintf("%d/src/f", i), "alpha",
					map[string]string{"mtime": remote.FormatMtime(mtime), "mode": "100644"})
				url += "/dst"
			}
			e.Srv.Put(t, e.Bucket, strings.TrimPrefix(url, "s3://"+e.Bucket+"/")+"/f", body, meta)
			sum, lines := synctest.Verify(t, e.Client, src, url, func(o *syncer.VerifyOptions) { o.Owner = c.owner })
			wantFindings(t, c.name, lines, c.want...)
			if sum.Identical() != (len(c.want) == 0) || sum.Checked != 1 {
				t.Errorf("%s: %+v", c.name, sum)
			}
		})
	}

	// Two local directories: a copy made without -p is not a difference.
	a, b := t.TempDir(), t.TempDir()
	testfs.WriteFile(t, a+"/f", "alpha")
	testfs.WriteFile(t, b+"/f", "alpha")
	os.Chmod(b+"/f", 0o600)
	os.Chtimes(a+"/f", mtime, mtime)
	os.Chtimes(b+"/f", mtime, mtime)
	if sum, lines := synctest.Verify(t, nil, a, b, nil); !sum.Identical() || len(lines) != 0 {
		t.Errorf("local to local: %+v %q", sum, lines)
	}
}
