package dirstat

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The lstat relative to the directory sees every kind of
// entry as os.Lstat does: the same mode bits (type, setuid, setgid,
// sticky), size, mtime to the nanosecond and owner.
func TestLstatAtIsLstat(t *testing.T) {
	dir := t.TempDir()
	mtime := time.Unix(1700000000, 123456789)
	for _, tc := range []struct {
		name string
		make func(p string) error
		mode os.FileMode // chmod-ed to, when not 0
	}{
		{"plain", func(p string) error { return os.WriteFile(p, []byte("hello"), 0o644) }, 0o640},
		{"setuid", func(p string) error { return os.WriteFile(p, nil, 0o755) }, os.ModeSetuid | 0o755},
		{"setgid", func(p string) error { return os.WriteFile(p, nil, 0o755) }, os.ModeSetgid | 0o750},
		{"sticky", func(p string) error { return os.WriteFile(p, nil, 0o644) }, os.ModeSticky | 0o644},
		{"link", func(p string) error { return os.Symlink("plain", p) }, 0},
		{"dangling", func(p string) error { return os.Symlink("nowhere", p) }, 0},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, 0},
		{"dir", func(p string) error { return os.Mkdir(p, 0o755) }, os.ModeSticky | 0o1777},
	} {
		p := filepath.Join(dir, tc.name)
		if err := tc.make(p); err != nil {
			t.Fatal(err)
		}
		if tc.mode != 0 {
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
		}
		if tc.name != "link" && tc.name != "dangling" {
			os.Chtimes(p, mtime, mtime)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, name := range append(names, "missing") {
		want, werr := os.Lstat(filepath.Join(dir, name))
		got, gerr := LstatAt(int(d.Fd()), dir, name)
		if (werr == nil) != (gerr == nil) || werr != nil && (os.IsNotExist(werr) != os.IsNotExist(gerr) || werr.Error() != gerr.Error()) {
			t.Errorf("%s: error %v, want %v", name, gerr, werr)
			continue
		}
		if werr != nil {
			continue
		}
		ws, gs := want.Sys().(*syscall.Stat_t), got.Sys().(*syscall.Stat_t)
		if got.Name() != want.Name() || got.Size() != want.Size() || got.Mode() != want.Mode() || got.IsDir() != want.IsDir() ||
			!got.ModTime().Equal(want.ModTime()) || gs.Ino != ws.Ino || gs.Uid != ws.Uid || gs.Gid != ws.Gid {
			t.Errorf("%s: got %s %d %v %v %v ino %d, want %s %d %v %v %v ino %d", name,
				got.Name(), got.Size(), got.Mode(), got.IsDir(), got.ModTime(), gs.Ino,
				want.Name(), want.Size(), want.Mode(), want.IsDir(), want.ModTime(), ws.Ino)
		}
	}
}
