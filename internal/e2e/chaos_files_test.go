package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// TestChaos's operations on files and directories: writes, truncations,
// renames (editors' saves among them), rewrites during an upload,
// removals, and one big file.

func (w *workload) create() bool {
	rel := w.freeName(w.pickDir(), "f")
	n := w.size()
	w.logf("create %s (%d bytes)", rel, n)
	w.write(rel, w.content(n))
	return true
}

func (w *workload) overwrite() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	n := w.size()
	w.logf("overwrite %s (%d bytes)", rel, n)
	w.write(rel, w.content(n))
	return true
}

func (w *workload) appendTo() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	add := w.content(1 + w.rng.IntN(8<<10))
	w.logf("append %d bytes to %s", len(add), rel)
	f, err := os.OpenFile(w.abs(rel), os.O_WRONLY|os.O_APPEND, 0)
	w.must(err)
	_, err = f.Write(add)
	w.must(err)
	w.must(f.Close())
	w.setContent(rel, append(append([]byte(nil), w.files[rel]...), add...))
	return true
}

func (w *workload) truncate() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	old := w.files[rel]
	n := w.rng.IntN(len(old) + 4096)
	w.logf("truncate %s to %d bytes (was %d)", rel, n, len(old))
	w.must(os.Truncate(w.abs(rel), int64(n)))
	b := make([]byte, n)
	copy(b, old)
	w.setContent(rel, b)
	return true
}

func (w *workload) renameFile() bool {
	from, ok := w.pickFile()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "f")
	w.logf("rename %s -> %s", from, to)
	w.rename(from, to)
	return true
}

// renameThenRewrite is mv f g followed at once by a new f (also vim's
// save: rename to a backup, write the new file, sometimes remove the
// backup).
func (w *workload) renameThenRewrite() bool {
	from, ok := w.pickFile()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "f")
	n := w.size()
	w.logf("rename %s -> %s, then write %s (%d bytes)", from, to, from, n)
	w.rename(from, to)
	w.write(from, w.content(n))
	if w.rng.IntN(3) == 0 {
		w.logf("  remove %s", to)
		w.must(os.Remove(w.abs(to)))
		w.forget(to)
	}
	return true
}

func (w *workload) renameOverExisting() bool {
	if len(w.files) < 2 {
		return false
	}
	from, _ := w.pickFile()
	to, _ := w.pickFile()
	if from == to {
		return false
	}
	w.logf("rename %s over %s", from, to)
	w.rename(from, to)
	return true
}

// editorSave writes a temporary file and renames it over the original.
func (w *workload) editorSave() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	tmp := path.Join(path.Dir(rel), "."+path.Base(rel)+".tmp")
	if path.Dir(rel) == "." {
		tmp = "." + rel + ".tmp"
	}
	n := w.size()
	w.logf("editor save %s via %s (%d bytes)", rel, tmp, n)
	w.write(tmp, w.content(n))
	w.rename(tmp, rel)
	return true
}

// rewriteWhileUploading writes a file, waits about the settle delay so
// the syncer starts sending it, then rewrites part of it in place: the
// object must never hold a mix of the two.
func (w *workload) rewriteWhileUploading() bool {
	rel, ok := w.pickFile()
	if !ok {
		rel = w.freeName(w.pickDir(), "f")
	}
	n := 256<<10 + w.rng.IntN(2<<20)
	if w.rng.IntN(4) == 0 {
		n = 9<<20 + w.rng.IntN(1<<20) // multipart: parts read at different times
	}
	pause := time.Duration(150+w.rng.IntN(300)) * time.Millisecond
	w.logf("write %s (%d bytes), after %v rewrite its middle in place", rel, n, pause)
	w.write(rel, w.content(n))
	time.Sleep(pause)
	f, err := os.OpenFile(w.abs(rel), os.O_WRONLY, 0)
	w.must(err)
	patch := bytes.Repeat([]byte{'#'}, 64<<10)
	off := n / 3
	_, err = f.WriteAt(patch, int64(off))
	w.must(err)
	w.must(f.Close())
	b := append([]byte(nil), w.files[rel]...)
	copy(b[off:], patch)
	w.setContent(rel, b)
	return true
}

func (w *workload) deleteFile() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	w.logf("delete %s", rel)
	w.must(os.Remove(w.abs(rel)))
	w.forget(rel)
	return true
}

func (w *workload) mkdir() bool {
	parent := w.pickDir()
	if strings.Count(parent, "/") >= 2 {
		return false
	}
	rel := w.freeName(parent, "d")
	switch w.rng.IntN(3) {
	case 0:
		w.logf("mkdir %s", rel)
	case 1:
		// Not empty by the time the drain looks: no marker until a
		// removal or a move leaves it empty.
		f := w.freeName(rel, "f")
		w.logf("mkdir %s, create %s", rel, f)
		w.must(os.Mkdir(w.abs(rel), 0o755))
		w.dirs[rel] = true
		w.write(f, w.content(w.size()))
		return true
	case 2:
		sub := w.freeName(rel, "d")
		w.logf("mkdir -p %s", sub)
		w.must(os.Mkdir(w.abs(rel), 0o755))
		w.dirs[rel] = true
		rel = sub
	}
	w.must(os.Mkdir(w.abs(rel), 0o755))
	w.dirs[rel] = true
	return true
}

func (w *workload) renameDir() bool {
	from := w.pickDir()
	if from == "" {
		return false
	}
	parent := w.pickDir()
	if parent == from || strings.HasPrefix(parent, from+"/") {
		parent = path.Dir(from)
		if parent == "." {
			parent = ""
		}
	}
	to := w.freeName(parent, "d")
	w.logf("rename directory %s -> %s", from, to)
	w.rename(from, to)
	return true
}

func (w *workload) removeDir() bool {
	rel := w.pickDir()
	if rel == "" {
		return false
	}
	w.logf("rm -r %s", rel)
	w.removeTree(rel)
	return true
}

func (w *workload) removeTree(rel string) {
	w.must(os.RemoveAll(w.abs(rel)))
	for _, k := range append(append(sortedKeys(w.files), sortedKeys(w.links)...), sortedKeys(w.specials)...) {
		if strings.HasPrefix(k, rel+"/") {
			w.forget(k)
		}
	}
	for _, k := range sortedKeys(w.dirs) {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(w.dirs, k)
		}
	}
}

// bigFile goes over the multipart threshold (8 MiB).
func (w *workload) bigFile() bool {
	rel, ok := w.pickFile()
	if !ok || w.rng.IntN(2) == 0 {
		rel = w.freeName(w.pickDir(), "f")
	}
	n := 9<<20 + w.rng.IntN(1<<20)
	w.logf("write big %s (%d bytes)", rel, n)
	b := bytes.Repeat(w.content(4096), n/4096+1)[:n]
	copy(b, fmt.Sprintf("op%d ", w.op))
	w.write(rel, b)
	return true
}
