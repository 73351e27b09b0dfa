package walk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A file listed by the walk and replaced by a symlink or a folder before
// the walk reaches it was replaced since the listing, as a folder or a link
// replaced so is: its own change tells (the mount journals it), not a
// warning. The chaos test found this: a directory renamed through the mount
// is synced by walking it, and a file in it replaced by a link meanwhile
// put the whole directory in the failed list ("symlink is not a regular
// file"). A special file still warns.
func TestWalkFileReplacedSinceListing(t *testing.T) {
	for _, c := range []struct {
		name    string
		replace func(path string) error
	}{
		{"by a symlink", func(p string) error { return os.Symlink("elsewhere", p) }},
		{"by a folder", func(p string) error { return os.Mkdir(p, 0o755) }},
	} {
		for _, mode := range []Links{StoreLinks, FollowLinks, SkipLinks} {
			t.Run(fmt.Sprintf("%s/mode=%d", c.name, mode), func(t *testing.T) {
				root := t.TempDir()
				for _, n := range []string{"a", "b", "c"} {
					if err := os.WriteFile(filepath.Join(root, n), []byte(n), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
					t.Fatal(err)
				}
				var warnings []string
				w, err := New(root, syncOptions(mode, func(p string, err error) {
					warnings = append(warnings, filepath.Base(p)+": "+err.Error())
				}))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(filepath.Join(root, "b")); err != nil {
					t.Fatal(err)
				}
				if err := c.replace(filepath.Join(root, "b")); err != nil {
					t.Fatal(err)
				}
				var got []string
				for f, ok := w.Next(); ok; f, ok = w.Next() {
					got = append(got, f.Rel)
				}
				if strings.Join(got, " ") != "a c" {
					t.Errorf("mode %d: walked %q, want a and c", mode, got)
				}
				if want := "fifo: named pipe (FIFO) is not a regular file"; strings.Join(warnings, "\n") != want {
					t.Errorf("mode %d: warnings %q, want only %q", mode, warnings, want)
				}
			})
		}
	}
}

// A directory's files are lstat-ed ahead of Next, in batches on several
// goroutines: what the walk yields is still what a walk stat-ing one file
// at a time yields, across batch boundaries (a run of files longer than
// statBatch, subdirectories between runs): the same keys in key order, a
// link as a link, followed or skipped per mode, a special file warned
// about, a file deleted after the walk started passed over in silence; and
// no directory is left open, whether the walk ran to its end or was
// closed half-way.
func TestWalkBatchedStat(t *testing.T) {
	root := t.TempDir()
	big := filepath.Join(root, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 1200
	name := func(i int) string { return fmt.Sprintf("n%04d", i) }
	for i := range n {
		p := filepath.Join(big, name(i))
		var err error
		switch i {
		case 250, 1000:
			if err = os.Mkdir(p, 0o755); err == nil {
				err = os.WriteFile(filepath.Join(p, "inner"), []byte("x"), 0o644)
			}
		case 800:
			err = syscall.Mkfifo(p, 0o644)
		case 900:
			err = os.Symlink(name(1), p)
		default:
			err = os.WriteFile(p, []byte(name(i)), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	for _, c := range []struct {
		mode Links
		link string // what n0900 is yielded as; "" when skipped
	}{
		{StoreLinks, "link"},
		{FollowLinks, "file"},
		{SkipLinks, ""},
	} {
		t.Run(fmt.Sprintf("mode=%d", c.mode), func(t *testing.T) {
			var want []string
			for i := range n {
				switch {
				case i == 250 || i == 1000:
					want = append(want, "big/"+name(i)+"/inner")
				case i == 700 || i == 800:
				case i == 900 && c.link == "link":
					want = append(want, "big/"+name(i)+linkSuffix)
				case i == 900 && c.link == "":
				default:
					want = append(want, "big/"+name(i))
				}
			}
			p700 := filepath.Join(big, name(700))
			if err := os.WriteFile(p700, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			before := fds()
			var warnings []string
			w, err := New(root, syncOptions(c.mode, func(p string, err error) {
				warnings = append(warnings, filepath.Base(p)+": "+err.Error())
			}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for f, ok := w.Next(); ok; f, ok = w.Next() {
				if len(got) == 0 {
					os.Remove(p700)
				}
				got = append(got, key(f))
				if f.Rel == "big/n0900" && c.link == "file" && (f.Link || f.Info.Size() != int64(len(name(1)))) {
					t.Errorf("followed link: size %d link %v, want its target's size %d", f.Info.Size(), f.Link, len(name(1)))
				}
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("walked %d keys, want %d; first difference:\n%s", len(got), len(want), firstDiff(got, want))
			}
			if w := "n0800: named pipe (FIFO) is not a regular file"; strings.Join(warnings, "\n") != w {
				t.Errorf("warnings %q, want only %q", warnings, w)
			}
			if after := fds(); after != before {
				t.Errorf("%d open files after the walk, %d before", after, before)
			}

			w, err = New(root, syncOptions(c.mode, func(string, error) {}))
			if err != nil {
				t.Fatal(err)
			}
			for range 260 { // into big/n0250/
				w.Next()
			}
			w.Close()
			if after := fds(); after != before {
				t.Errorf("%d open files after a walk closed half-way, %d before", after, before)
			}
		})
	}
}

// linkSuffix is the key suffix of a stored link in reconcile, verify and
// the drain (rclone's).
const linkSuffix = ".rclonelink"

// syncOptions are the options of the walks of reconcile, verify and the
// drain: the walk goes on past whatever it tells warn.
func syncOptions(links Links, warn func(string, error)) Options {
	return Options{Links: links, LinkSuffix: linkSuffix, Warn: func(p string, err error) error { warn(p, err); return nil }}
}

// key is where an entry sorts: a stored link at its .rclonelink key.
func key(f Entry) string {
	if f.Link {
		return f.Rel + linkSuffix
	}
	return f.Rel
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("#%d: got %q, want %q", i, g, w)
		}
	}
	return ""
}
