package syncer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/s3sync/s3sync/internal/s3test"
	"github.com/s3sync/s3sync/internal/testenv"
	"github.com/s3sync/s3sync/remote"
)

// reflinkDir mounts a small btrfs image (loop device) and returns a
// directory on it: a filesystem that can clone files, as WORKDIR on btrfs
// or XFS can. It needs root and mkfs.btrfs (.ci/run installs btrfs-progs).
func reflinkDir(t *testing.T) string {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		why = "mkfs.btrfs not installed (Debian's btrfs-progs)"
	}
	if why != "" {
		testenv.CannotRun(t, "the reflink test: %s", why)
	}
	base := t.TempDir()
	img, mnt := filepath.Join(base, "fs.img"), filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30) // sparse: room for the writer's new extents while clones pin old ones
	f.Close()
	for _, cmd := range [][]string{{"mkfs.btrfs", "-q", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// busyWriter rewrites path, whole, with one pwrite per version until stop:
// each version is a single byte repeated, so a torn object would mix two.
// A pwrite that fails half-way (ENOSPC on the small btrfs while clones
// pin old extents) tears the file itself; *failed then says so, and the
// writer stops.
func busyWriter(t *testing.T, path string, size int, stop <-chan struct{}, failed *error) *sync.WaitGroup {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, size)
	f.WriteAt(buf, 0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer f.Close()
		for v := byte(1); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			for i := range buf {
				buf[i] = v
			}
			if _, err := f.WriteAt(buf, 0); err != nil {
				*failed = err
				return
			}
		}
	}()
	return &wg
}

func uniform(b []byte) bool {
	return len(b) > 0 && bytes.Count(b, b[:1]) == len(b)
}

// A file that never stops changing is sent from a reflink snapshot where
// the filesystem can make one (the object is one version, whole), and is
// reported as ErrKeepsChanging where it cannot (or sent whole, if the
// writer happened to pause for a whole attempt) — never sent torn.
func TestUploadFileThatNeverStopsChanging(t *testing.T) {
	srv := s3test.Get(t)
	bucket := srv.NewBucket(t)
	c, err := remote.New(context.Background(), remote.Config{EndpointURL: srv.Endpoint, MultipartThreshold: 5 << 20, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
	}{{"reflink", reflinkDir(t)}, {"plain", t.TempDir()}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1 << 20, 12 << 20} {
				path := filepath.Join(tc.dir, "vm.img")
				stop := make(chan struct{})
				var writeErr error
				wg := busyWriter(t, path, size, stop, &writeErr)
				res, err := UploadFile(context.Background(), c, path, bucket, tc.name, "")
				close(stop)
				wg.Wait()
				os.Remove(path)
				if writeErr != nil {
					t.Fatalf("%d bytes: the writer failed, the file itself may be torn: %v", size, writeErr)
				}
				if tc.name == "plain" && err != nil {
					if !errors.Is(err, ErrKeepsChanging) {
						t.Errorf("%d bytes: err = %v, want ErrKeepsChanging", size, err)
					}
					continue
				}
				// Sent (plain: the writer was off the CPU for a whole
				// attempt, as happens under load): one whole version.
				if err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
				body, _ := srv.Get(t, bucket, tc.name)
				if len(body) != size || !uniform([]byte(body)) || res.Size != int64(size) {
					t.Errorf("%d bytes: the object (%d bytes) is not one whole version of the file", size, len(body))
				}
			}
		})
	}
}
