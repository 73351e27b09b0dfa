package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/s3sync/s3sync/internal/testfs"
)

func openTest(t testing.TB) *Cache {
	t.Helper()
	// NoSync: these tests are about contents and order, not durability, and
	// seed thousands of entries one Put at a time.
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "state.db"), 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := Open(db)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPutGet(t *testing.T) {
	c := openTest(t)
	want := Entry{
		Size:         1 << 40,
		Mtime:        time.Unix(1700000000, 123456789),
		ETag:         `"d41d8cd98f00b204e9800998ecf8427e-3"`,
		StorageClass: "STANDARD_IA",
		Synced:       time.Unix(1700000100, 1),
		Kind:         KindLink,
		Meta:         true,
		Mode:         0o4755,
		UID:          1 << 31,
		GID:          100,
	}
	if err := c.Put("dir/é file", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get("dir/é file")
	if err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if got.Size != want.Size || !got.Mtime.Equal(want.Mtime) || got.Mtime.Nanosecond() != 123456789 ||
		got.ETag != want.ETag || got.StorageClass != want.StorageClass || !got.Synced.Equal(want.Synced) ||
		got.Kind != want.Kind || got.Meta != want.Meta || got.Mode != want.Mode || got.UID != want.UID || got.GID != want.GID {
		t.Errorf("Get = %+v, want %+v", got, want)
	}

	// An entry written by a version 1 s3sync reads as a file without metadata.
	v1 := (&Entry{Size: 7, ETag: "x"}).marshal()
	v1 = v1[:len(v1)-5]
	v1[0] = 1
	if got, err := unmarshalEntry(v1); err != nil || got.Size != 7 || got.Kind != KindFile || got.Meta {
		t.Errorf("version 1 entry = %+v, %v", got, err)
	}

	if err := c.Put("zero", Entry{}); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := c.Get("zero"); !ok || !got.Mtime.IsZero() || !got.Synced.IsZero() {
		t.Errorf("zero entry round trip = %+v, %v", got, ok)
	}
	if _, ok, err := c.Get("missing"); ok || err != nil {
		t.Errorf("Get(missing) = %v, %v", ok, err)
	}
	if n, err := c.Len(); n != 2 || err != nil {
		t.Errorf("Len = %d, %v", n, err)
	}
	if err := c.Delete("zero"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("zero"); err != nil {
		t.Errorf("deleting an absent path: %v", err)
	}
	if n, _ := c.Len(); n != 1 {
		t.Errorf("Len after Delete = %d", n)
	}
}

func TestCorruptEntry(t *testing.T) {
	data := (&Entry{Size: 5, Mtime: time.Unix(1, 2), ETag: "x"}).marshal()
	for n := range data {
		if _, err := unmarshalEntry(data[:n]); !errors.Is(err, errCorrupt) {
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
}

func TestWalk(t *testing.T) {
	c := openTest(t)
	var all []string
	for i := range 2*walkChunk + 5 {
		p := fmt.Sprintf("d/%05d", i)
		all = append(all, p)
		if err := c.Put(p, Entry{Size: int64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"c", "d", "d0", "e/x"} {
		if err := c.Put(p, Entry{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := c.Walk("d/", func(p string, e Entry) error {
		got = append(got, p)
		// Writing from inside the walk must not deadlock.
		return c.Put(p, Entry{Size: e.Size + 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(all, ",") {
		t.Errorf("Walk(d/) visited %d paths, want %d in order", len(got), len(all))
	}
	if e, _, _ := c.Get("d/00007"); e.Size != 8 {
		t.Errorf("Put during Walk lost: %+v", e)
	}

	got = nil
	c.Walk("", func(p string, _ Entry) error { got = append(got, p); return nil })
	if len(got) != len(all)+4 || got[0] != "c" || got[1] != "d" || got[len(got)-2] != "d0" {
		t.Errorf("Walk(\"\") = %d paths starting %v", len(got), got[:3])
	}

	stop := errors.New("stop")
	n := 0
	if err := c.Walk("", func(string, Entry) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Walk with failing fn = %v after %d calls", err, n)
	}
}

func TestScan(t *testing.T) {
	tests := []struct {
		name   string
		synced map[string]string // on disk and in the cache before the change
		extra  []string          // in the cache only
		change func(t *testing.T, root string)
		skip   func(string) bool
		want   string // events in call order: +changed -removed
	}{
		{name: "unchanged", synced: map[string]string{"a": "1", "d/b": "22", "l": "->a"}},
		{name: "new file", synced: map[string]string{"a": "1"},
			change: func(t *testing.T, root string) { testfs.Tree(t, root, map[string]string{"b": "2", "d/c": "3"}) },
			want:   "+b +d/c"},
		{name: "new symlink", synced: map[string]string{"a": "1"},
			change: func(t *testing.T, root string) { testfs.Tree(t, root, map[string]string{"l": "->a"}) },
			want:   "+l"},
		{name: "modified size", synced: map[string]string{"a": "1", "b": "2"},
			change: func(t *testing.T, root string) {
				testfs.Tree(t, root, map[string]string{"b": "22"}) // Tree restores the old mtime
			},
			want: "+b"},
		{name: "modified mtime only", synced: map[string]string{"a": "1", "b": "2"},
			change: func(t *testing.T, root string) {
				mt := time.Unix(1700000000, 123456790) // one nanosecond later
				if err := os.Chtimes(filepath.Join(root, "a"), mt, mt); err != nil {
					t.Fatal(err)
				}
			},
			want: "+a"},
		{name: "deleted", synced: map[string]string{"a": "1", "b/c": "2", "b/d": "3", "z": "4"},
			change: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "a"))
				os.RemoveAll(filepath.Join(root, "b"))
			},
			want: "-a -b/c -b/d"},
		{name: "cache only", synced: map[string]string{"m": "1"}, extra: []string{"a", "z/z"},
			want: "-a -z/z"},
		{name: "file became directory", synced: map[string]string{"a": "1", "a0": "2"},
			change: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "a"))
				testfs.Tree(t, root, map[string]string{"a/x": "1"})
			},
			want: "-a +a/x"},
		{name: "directory became file", synced: map[string]string{"a/x": "1", "a-b": "2"},
			change: func(t *testing.T, root string) {
				os.RemoveAll(filepath.Join(root, "a"))
				testfs.Tree(t, root, map[string]string{"a": "1"})
			},
			want: "+a -a/x"},
		{name: "file became symlink, same size and mtime", synced: map[string]string{"a": "12345"},
			change: func(t *testing.T, root string) {
				p := filepath.Join(root, "a")
				os.Remove(p)
				testfs.Tree(t, root, map[string]string{"a": "->xxxxx"})
				ts := []unix.Timespec{unix.NsecToTimespec(1700000000123456789), unix.NsecToTimespec(1700000000123456789)}
				if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					t.Fatal(err)
				}
			},
			want: "+a"},
		{name: "file became fifo", synced: map[string]string{"p": "1"},
			change: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "p"))
				testfs.Tree(t, root, map[string]string{"p": "<fifo>"})
			},
			want: "-p"},
		{name: "S3 key order", synced: map[string]string{"a/y": "1", "a-c": "1", "a1": "1"},
			change: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "a/y"))
				os.Remove(filepath.Join(root, "a-c"))
				os.Remove(filepath.Join(root, "a1"))
				testfs.Tree(t, root, map[string]string{"a-b": "", "a.b": "", "a0": "", "a b": "", "a/x": "", "a/z": "", "a~": "", "é": ""})
			},
			want: "+a b +a-b -a-c +a.b +a/x -a/y +a/z +a0 -a1 +a~ +é"},
		{name: "skip", synced: map[string]string{"keep": "1", "x.tmp": "1", "tmp/old": "1"},
			extra: []string{"gone.tmp", "tmp/gone", "tmp/deep/gone"},
			change: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "x.tmp"))
				testfs.Tree(t, root, map[string]string{"new.tmp": "1", "tmp/new": "1", "keep": "22"})
			},
			skip: func(p string) bool { return strings.HasSuffix(p, ".tmp") || p == "tmp" },
			want: "+keep"},
		// Empty directories are mirrored as markers "dir/" (see the
		// drain); a marker of a directory that has files since stays.
		{name: "directory markers", synced: map[string]string{"d/f": "1", "e": "<dir>", "f": "<dir>"}, extra: []string{"d/", "gone/"},
			want: "-gone/"},
		{name: "new empty directory", synced: map[string]string{"a": "1"},
			change: func(t *testing.T, root string) {
				testfs.Tree(t, root, map[string]string{"e/f/g": "<dir>", "h": "<dir>"})
			},
			want: "+e/f/g/ +h/"},
		{name: "empty directory removed or filled", synced: map[string]string{"a": "<dir>", "b": "<dir>", "c": "<dir>", "c0": "1"},
			change: func(t *testing.T, root string) {
				os.Remove(filepath.Join(root, "a"))
				testfs.Tree(t, root, map[string]string{"b/x": "1"})
				os.Remove(filepath.Join(root, "c"))
				testfs.Tree(t, root, map[string]string{"c": "1"})
			},
			want: "-a/ +b/x +c -c/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := openTest(t)
			root := t.TempDir()
			testfs.Tree(t, root, tt.synced)
			err := walkSorted(root, func(p string, info os.FileInfo) error {
				return c.Put(p, Entry{Size: info.Size(), Mtime: info.ModTime(), ETag: "e", Kind: kindOf(info)})
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.extra {
				if err := c.Put(p, Entry{Size: 1}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.change != nil {
				tt.change(t, root)
			}
			var events []string
			err = c.Scan(root, tt.skip,
				func(p string) { events = append(events, "+"+p) },
				func(p string) { events = append(events, "-"+p) })
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(events, " "); got != tt.want {
				t.Errorf("Scan events\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestScanLarge(t *testing.T) {
	// More entries than one read chunk, with changes spread across chunks.
	c := openTest(t)
	root := t.TempDir()
	files := map[string]string{}
	for i := range 3 * walkChunk {
		files[fmt.Sprintf("d%d/f%04d", i%3, i)] = "x"
	}
	testfs.Tree(t, root, files)
	walkSorted(root, func(p string, info os.FileInfo) error {
		return c.Put(p, Entry{Size: info.Size(), Mtime: info.ModTime()})
	})
	os.Remove(filepath.Join(root, "d1/f1000"))
	testfs.Tree(t, root, map[string]string{"d2/f2000": "yy", "d0/new": "z"})
	c.Put("d3/", Entry{Kind: KindDir}) // a marker counts as an entry too
	var changed, removed []string
	n, err := c.ScanCount(root, nil, func(p string) { changed = append(changed, p) }, func(p string) { removed = append(removed, p) })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(changed) != "[d0/new d2/f2000]" || fmt.Sprint(removed) != "[d1/f1000 d3/]" {
		t.Errorf("changed %v, removed %v", changed, removed)
	}
	if l, _ := c.Len(); n != 3*walkChunk+1 || l != n {
		t.Errorf("ScanCount counted %d entries, Len %d; want %d", n, l, 3*walkChunk+1)
	}
}

func TestEmpty(t *testing.T) {
	c := openTest(t)
	if empty, err := c.Empty(); err != nil || !empty {
		t.Fatalf("new cache: Empty %v, %v", empty, err)
	}
	c.Put("a", Entry{Size: 1})
	if empty, err := c.Empty(); err != nil || empty {
		t.Fatalf("cache with one entry: Empty %v, %v", empty, err)
	}
}

func TestConcurrentPut(t *testing.T) {
	c := openTest(t)
	const workers, each = 8, 200
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				if err := c.Put(fmt.Sprintf("w%d/%d", w, i), Entry{Size: int64(i)}); err != nil {
					errs <- err
					return
				}
				if i%10 == 0 {
					if err := c.Delete(fmt.Sprintf("w%d/%d", w, i)); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.Len(); n != workers*each*9/10 || err != nil {
		t.Errorf("Len = %d, %v; want %d", n, err, workers*each*9/10)
	}
	if err := c.Put("", Entry{}); !errors.Is(err, ErrBadPath) {
		t.Errorf("Put(\"\") = %v", err)
	}
}

// Reset forgets every entry, keeps the uploads in progress, and the cache
// is usable after it.
func TestReset(t *testing.T) {
	c := openTest(t)
	for _, p := range []string{"a", "dir/", "sub/b"} {
		if err := c.Put(p, Entry{Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutUpload("big", Upload{Key: "big", ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutConflict("a", Conflict{Kind: ConflictChanged, Copy: "a.conflict-x-20260101-000000"}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Reset(); err != nil || n != 3 {
		t.Fatalf("Reset = %d, %v; want 3", n, err)
	}
	if n, _ := c.Len(); n != 0 {
		t.Errorf("%d entries after Reset", n)
	}
	if _, ok, _ := c.GetUpload("big"); !ok {
		t.Error("Reset dropped an upload in progress")
	}
	if _, ok, err := c.GetConflict("a"); ok || err != nil {
		t.Errorf("a conflict of the old folder survived Reset (%v)", err)
	}
	if err := c.Put("c", Entry{Size: 2}); err != nil {
		t.Fatal(err)
	}
	if e, ok, _ := c.Get("c"); !ok || e.Size != 2 {
		t.Errorf("after Reset and a Put: %+v %v", e, ok)
	}
}
