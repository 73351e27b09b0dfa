package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
)

// treeSize counts the nodes go-fuse holds below and including in: what the
// kernel has looked up and not forgotten.
func treeSize(in *gofs.Inode) int {
	n := 1
	for _, ch := range in.Children() {
		n += treeSize(ch)
	}
	return n
}

// TestNodeLimit: files walked through the mount past MaxNodes are forgotten
// by the kernel, so this process holds at most MaxNodes nodes, and every
// file still reads, stats the same, and records its writes; files kept open
// stay known and their writes are recorded under their names.
func TestNodeLimit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		entryOnly bool
	}{
		{"prune", false},
		{"entries", true}, // kernels before FUSE_NOTIFY_PRUNE
	} {
		t.Run(tc.name, func(t *testing.T) {
			const max, dirs, files = 500, 3, 800
			tm := newMount(t, Options{MaxNodes: max, entryOnly: tc.entryOnly})
			root := tm.m.root.EmbeddedInode()
			inos := map[string]uint64{}
			for d := range dirs {
				must(t, os.Mkdir(tm.path(fmt.Sprint("d", d)), 0o755))
				for f := range files {
					rel := fmt.Sprintf("d%d/f%d", d, f)
					write(t, tm.path(rel), rel)
					var st syscall.Stat_t
					must(t, syscall.Stat(tm.path(rel), &st))
					inos[rel] = st.Ino
				}
			}
			// The oldest files, kept open: they must stay known.
			var open []*os.File
			for f := range 20 {
				fh, err := os.OpenFile(tm.path(fmt.Sprintf("d0/f%d", f)), os.O_RDWR, 0)
				must(t, err)
				open = append(open, fh)
				t.Cleanup(func() { fh.Close() })
			}
			poll(t, 60*time.Second, "only the files kept open still open", func() bool {
				return tm.m.handles.Load() == int64(len(open))
			})
			tm.rec.take()
			// Walk everything again: the kernel looks up what it forgot.
			for range 2 {
				for rel, ino := range inos {
					var st syscall.Stat_t
					must(t, syscall.Stat(tm.path(rel), &st))
					if st.Ino != ino {
						t.Fatalf("%s: inode %d, was %d", rel, st.Ino, ino)
					}
				}
			}
			poll(t, 60*time.Second, fmt.Sprintf("at most %d nodes held", max), func() bool {
				return treeSize(root) <= max
			})
			if got := tm.m.nodes.count(); got > max {
				t.Errorf("limit counts %d nodes, want <= %d", got, max)
			}
			for rel := range inos {
				wantContent(t, tm.path(rel), rel)
			}
			poll(t, 60*time.Second, fmt.Sprintf("at most %d nodes held after reading all", max), func() bool {
				return treeSize(root) <= max
			})
			for i, fh := range open {
				rel := fmt.Sprintf("d0/f%d", i)
				if (&Mounted{m: tm.m}).node(rel) == nil {
					t.Errorf("%s is open but was forgotten", rel)
				}
				if _, err := fh.WriteAt([]byte("changed"), 0); err != nil {
					t.Fatal(err)
				}
				must(t, fh.Close())
			}
			got := tm.quiesce(t)
			for i := range open {
				rel := fmt.Sprintf("d0/f%d", i)
				if countCall(got, changed(rel)) == 0 {
					t.Errorf("write to open %s not recorded: %v", rel, got)
				}
				wantContent(t, filepath.Join(tm.work, rel), "changed")
			}
		})
	}
}
