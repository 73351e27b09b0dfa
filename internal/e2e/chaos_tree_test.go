package e2e

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// What a restore must give back besides content: modes, symlinks (stored
// as NAME.rclonelink, never followed) and empty directories (dir/ markers).

var chaosModes = []os.FileMode{0o755, 0o644, 0o600}

func (w *workload) chmod() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	m := chaosModes[w.rng.IntN(len(chaosModes))]
	if m == w.modes[rel] {
		m = chaosModes[(slices.Index(chaosModes, m)+1)%len(chaosModes)]
	}
	w.logf("chmod %04o %s (was %04o)", m, rel, w.modes[rel])
	w.must(os.Chmod(w.abs(rel), m))
	w.setMode(rel, m)
	return true
}

func (w *workload) pickLink() (string, bool) {
	if len(w.links) == 0 {
		return "", false
	}
	ks := sortedKeys(w.links)
	return ks[w.rng.IntN(len(ks))], true
}

// linkTarget is a target for a link at rel, and what it points to.
func (w *workload) linkTarget(rel string) (target, what string) {
	relTo := func(to string) string {
		r, _ := filepath.Rel(filepath.Join("/w", path.Dir(rel)), filepath.Join("/w", to))
		return r
	}
	switch w.rng.IntN(6) {
	case 0:
		if f, ok := w.pickFile(); ok {
			return relTo(f), "a file"
		}
	case 1:
		return relTo(w.pickDir()), "a directory"
	case 2:
		if f, ok := w.pickFile(); ok {
			return w.abs(f), "a file, by its absolute path"
		}
	case 3:
		return w.outside, "a directory outside WORKDIR"
	case 4:
		return filepath.Join(w.outside, "id_rsa"), "a secret outside WORKDIR"
	}
	return fmt.Sprintf("../nowhere/op%d", w.op), "nothing"
}

// tempName is a name beside rel for a new entry renamed over rel.
func tempName(rel, suffix string) string {
	return path.Join(path.Dir(rel), "."+path.Base(rel)+suffix)
}

func (w *workload) symlink() bool {
	rel := w.freeName(w.pickDir(), "l")
	target, what := w.linkTarget(rel)
	w.logf("ln -s %s %s (%s)", target, rel, what)
	w.must(os.Symlink(target, w.abs(rel)))
	w.links[rel] = target
	return true
}

// replaceByLink makes rel (a file, a link) a link to target: removed and
// made again, or a new link renamed over it (ln -sfn's way).
func (w *workload) replaceByLink(rel, target string) {
	if w.rng.IntN(2) == 0 {
		w.logf("  rm %s, ln -s %s %s", rel, target, rel)
		w.must(os.Remove(w.abs(rel)))
		w.forget(rel)
		w.must(os.Symlink(target, w.abs(rel)))
		w.links[rel] = target
		return
	}
	tmp := tempName(rel, ".new")
	w.logf("  ln -s %s %s, mv %s over %s", target, tmp, tmp, rel)
	w.must(os.Symlink(target, w.abs(tmp)))
	w.links[tmp] = target
	w.rename(tmp, rel)
}

func (w *workload) retarget() bool {
	rel, ok := w.pickLink()
	if !ok {
		return false
	}
	target, what := w.linkTarget(rel)
	w.logf("retarget %s from %s to %s (%s)", rel, w.links[rel], target, what)
	w.replaceByLink(rel, target)
	return true
}

func (w *workload) removeLink() bool {
	rel, ok := w.pickLink()
	if !ok {
		return false
	}
	w.logf("rm link %s", rel)
	w.must(os.Remove(w.abs(rel)))
	w.forget(rel)
	return true
}

func (w *workload) renameLink() bool {
	from, ok := w.pickLink()
	if !ok {
		return false
	}
	to := w.freeName(w.pickDir(), "l")
	w.logf("rename link %s -> %s", from, to)
	w.rename(from, to)
	return true
}

func (w *workload) fileToLink() bool {
	rel, ok := w.pickFile()
	if !ok {
		return false
	}
	target, what := w.linkTarget(rel)
	w.logf("replace file %s by a link to %s (%s)", rel, target, what)
	w.replaceByLink(rel, target)
	return true
}

func (w *workload) linkToFile() bool {
	rel, ok := w.pickLink()
	if !ok {
		return false
	}
	n := w.size()
	if w.rng.IntN(2) == 0 {
		w.logf("replace link %s by a file (%d bytes): rm, write", rel, n)
		w.must(os.Remove(w.abs(rel)))
		w.forget(rel)
		w.write(rel, w.content(n))
		return true
	}
	tmp := tempName(rel, ".tmp")
	w.logf("replace link %s by a file (%d bytes): write %s, mv over", rel, n, tmp)
	w.write(tmp, w.content(n))
	w.rename(tmp, rel)
	return true
}

func (w *workload) rmdirEmpty() bool {
	var empty []string
	for _, d := range sortedKeys(w.dirs) {
		if w.entries(d) == 0 {
			empty = append(empty, d)
		}
	}
	if len(empty) == 0 {
		return false
	}
	rel := empty[w.rng.IntN(len(empty))]
	w.logf("rmdir %s", rel)
	w.must(os.Remove(w.abs(rel)))
	delete(w.dirs, rel)
	return true
}

// moveOutLast moves a file out of its directory, the last entry of it
// where there is one, leaving the directory empty.
func (w *workload) moveOutLast() bool {
	var last, all []string
	for _, f := range sortedKeys(w.files) {
		if d := path.Dir(f); d != "." {
			all = append(all, f)
			if w.entries(d) == 1 {
				last = append(last, f)
			}
		}
	}
	if len(last) > 0 {
		all = last
	}
	if len(all) == 0 {
		return false
	}
	from := all[w.rng.IntN(len(all))]
	parent := path.Dir(path.Dir(from))
	if parent == "." {
		parent = ""
	}
	to := w.freeName(parent, "f")
	w.logf("move %s out to %s (%d entries left in %s)", from, to, w.entries(path.Dir(from))-1, path.Dir(from))
	w.rename(from, to)
	return true
}

// swapType gives a name another type: a file or link becomes an empty
// directory, a directory (and what it holds) a file or a link. The old
// name's object must go (NAME, NAME.rclonelink or the marker NAME/) and
// the new one's come.
func (w *workload) swapType() bool {
	switch w.rng.IntN(3) {
	case 0, 1:
		rel, ok := w.pickFile()
		if w.rng.IntN(2) == 0 || !ok {
			if rel, ok = w.pickLink(); !ok {
				return false
			}
		}
		w.logf("replace %s by an empty directory", rel)
		w.must(os.Remove(w.abs(rel)))
		w.forget(rel)
		w.must(os.Mkdir(w.abs(rel), 0o755))
		w.dirs[rel] = true
	default:
		rel := w.pickDir()
		if rel == "" {
			return false
		}
		w.logf("rm -r %s, then make it a file or a link", rel)
		w.removeTree(rel)
		if w.rng.IntN(2) == 0 {
			w.write(rel, w.content(w.size()))
		} else {
			target, what := w.linkTarget(rel)
			w.logf("  ln -s %s %s (%s)", target, rel, what)
			w.must(os.Symlink(target, w.abs(rel)))
			w.links[rel] = target
		}
	}
	return true
}
