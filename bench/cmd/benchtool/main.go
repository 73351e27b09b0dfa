// Command benchtool is the helper of scripts/bench.sh (make bench): it makes
// the workloads' files, watches the bucket and measures close()-to-visible
// latency through a mount. It talks S3 with the standard AWS environment
// (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION).
//
//	benchtool gen DIR N DIRS SIZE SEED        N files of SIZE random bytes in DIRS directories
//	benchtool change DIR N                    rewrite N files (spread over DIR) with new content, same size
//	benchtool mb BUCKET                       make a bucket
//	benchtool count BUCKET PREFIX             print "objects bytes" under PREFIX
//	benchtool waitobjs BUCKET PREFIX N BYTES TIMEOUT
//	                                          wait until PREFIX holds ≥ N objects and ≥ BYTES bytes
//	benchtool verify DIR BUCKET PREFIX        the bucket holds exactly DIR's files (size, and MD5 for single-part ETags)
//	benchtool latency MNT BUCKET PREFIX N     write N small files through a mount one at a time; print p50 and p99 ms
//	                                          from close() to HEAD returning 200
package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	a := os.Args[2:]
	switch os.Args[1] {
	case "gen":
		need(a, 5)
		err = gen(a[0], atoi(a[1]), atoi(a[2]), atoi(a[3]), uint64(atoi(a[4])))
	case "change":
		need(a, 2)
		err = change(a[0], atoi(a[1]))
	case "mb":
		need(a, 1)
		_, err = client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &a[0]})
	case "count":
		need(a, 2)
		var n int
		var b int64
		n, b, err = count(client(), a[0], a[1])
		if err == nil {
			fmt.Println(n, b)
		}
	case "waitobjs":
		need(a, 5)
		err = waitObjs(a[0], a[1], atoi(a[2]), int64(atoi(a[3])), dur(a[4]))
	case "verify":
		need(a, 3)
		err = verify(a[0], a[1], a[2])
	case "latency":
		need(a, 4)
		err = latency(a[0], a[1], a[2], atoi(a[3]))
	default:
		var ok bool
		if ok, err = scaleCmd(os.Args[1], a); !ok {
			usage()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchtool gen|change|mb|count|waitobjs|verify|latency ARGS (see the source)")
	os.Exit(2)
}

func need(a []string, n int) {
	if len(a) != n {
		usage()
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool: not a number:", s)
		os.Exit(2)
	}
	return n
}

func dur(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool: not a duration:", s)
		os.Exit(2)
	}
	return d
}

// gen writes n files of size random bytes, round-robin over dirs directories.
func gen(dir string, n, dirs, size int, seed uint64) error {
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
	}
	rng := rand.NewChaCha8(key)
	buf := make([]byte, size)
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%03d", d)), 0o755); err != nil {
			return err
		}
	}
	for i := range n {
		rng.Read(buf)
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%dirs), fmt.Sprintf("f%06d.bin", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func files(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	slices.Sort(out)
	return out, err
}

// change rewrites n files spread evenly over dir with new random content of
// the same size; their mtime becomes now.
func change(dir string, n int) error {
	all, err := files(dir)
	if err != nil {
		return err
	}
	if len(all) == 0 || n <= 0 {
		return nil
	}
	step := max(1, len(all)/n)
	rng := rand.NewChaCha8([32]byte{byte(time.Now().UnixNano())})
	for i := 0; i < n && i*step < len(all); i++ {
		p := all[i*step]
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		buf := make([]byte, st.Size())
		rng.Read(buf)
		if len(buf) > 0 {
			buf[0] ^= 0xff // surely not the old content
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func client() *s3.Client {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		if ep := os.Getenv("AWS_ENDPOINT_URL"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
}

func prefixOf(p string) string {
	p = strings.Trim(p, "/")
	if p != "" {
		p += "/"
	}
	return p
}

type object struct {
	size int64
	etag string
}

func list(c *s3.Client, bucket, prefix string) (map[string]object, error) {
	prefix = prefixOf(prefix)
	out := map[string]object{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			out[strings.TrimPrefix(aws.ToString(o.Key), prefix)] = object{aws.ToInt64(o.Size), strings.Trim(aws.ToString(o.ETag), `"`)}
		}
	}
	return out, nil
}

func count(c *s3.Client, bucket, prefix string) (int, int64, error) {
	objs, err := list(c, bucket, prefix)
	var b int64
	for _, o := range objs {
		b += o.size
	}
	return len(objs), b, err
}

func waitObjs(bucket, prefix string, n int, bytes int64, timeout time.Duration) error {
	c := client()
	deadline := time.Now().Add(timeout)
	for {
		got, b, err := count(c, bucket, prefix)
		if err == nil && got >= n && b >= bytes {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %d objects, %d bytes (want %d, %d); last error %v", timeout, got, b, n, bytes, err)
		}
		time.Sleep(500 * time.Millisecond) // a listing of 10,000 keys costs the server; do not starve the tool being measured
	}
}

func verify(dir, bucket, prefix string) error {
	objs, err := list(client(), bucket, prefix)
	if err != nil {
		return err
	}
	all, err := files(dir)
	if err != nil {
		return err
	}
	bad := 0
	for _, p := range all {
		rel, _ := filepath.Rel(dir, p)
		key := filepath.ToSlash(rel)
		o, ok := objs[key]
		delete(objs, key)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := md5.Sum(data)
		switch {
		case !ok:
			err = errors.New("missing")
		case o.size != int64(len(data)):
			err = fmt.Errorf("size %d, want %d", o.size, len(data))
		case !strings.Contains(o.etag, "-") && o.etag != hex.EncodeToString(sum[:]):
			err = errors.New("content differs (ETag)")
		}
		if err != nil {
			if bad < 5 {
				fmt.Fprintf(os.Stderr, "benchtool verify: %s: %v\n", key, err)
			}
			bad++
		}
	}
	if len(objs) > 0 {
		fmt.Fprintf(os.Stderr, "benchtool verify: %d extra objects\n", len(objs))
	}
	if bad > 0 || len(objs) > 0 {
		return fmt.Errorf("s3://%s/%s does not match %s: %d wrong or missing, %d extra", bucket, prefixOf(prefix), dir, bad, len(objs))
	}
	return nil
}

func latency(mnt, bucket, prefix string, n int) error {
	c := client()
	ctx := context.Background()
	dir := filepath.Join(mnt, "latency")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var ds []time.Duration
	for i := range n {
		name := fmt.Sprintf("f%04d.txt", i)
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(f, "file %d written at %v\n", i, time.Now()); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		closed := time.Now()
		key := prefixOf(prefix) + path.Join("latency", name)
		for {
			_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
			if err == nil {
				break
			}
			if time.Since(closed) > time.Minute {
				return fmt.Errorf("%s not visible a minute after close: %v", key, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
		ds = append(ds, time.Since(closed))
	}
	slices.Sort(ds)
	pct := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1
		return float64(ds[max(0, min(i, len(ds)-1))].Microseconds()) / 1000
	}
	fmt.Printf("%.1f %.1f\n", pct(0.50), pct(0.99))
	return nil
}
