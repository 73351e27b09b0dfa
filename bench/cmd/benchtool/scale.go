package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The helpers of scripts/bench-scale.sh (make bench-scale):
//
//	benchtool gentree DIR N SEED LIST   N small files (1 B–4 KiB) in a tree of depths 1–6 with some
//	                                    flat directories of up to 50,000 files; their paths go to LIST
//	benchtool modify ROOT LIST N OFF    append to N files of LIST (spread evenly, starting at the
//	                                    OFF-th), found under ROOT (WORKDIR or a mountpoint), with 8 writers
//	benchtool fuseloop DIR N            create N 100-byte files in DIR, then stat each; print
//	                                    "creates/s stats/s"
func scaleCmd(name string, a []string) (bool, error) {
	switch name {
	case "gentree":
		need(a, 4)
		return true, genTree(a[0], atoi(a[1]), uint64(atoi(a[2])), a[3])
	case "modify":
		need(a, 4)
		return true, modify(a[0], a[1], atoi(a[2]), atoi(a[3]))
	case "fuseloop":
		need(a, 2)
		return true, fuseLoop(a[0], atoi(a[1]))
	}
	return false, nil
}

// genTree lays out n files the way a photo library next to a source tree
// looks: a tenth in flat directories of up to 50,000 (camera imports), the
// rest spread at random over a tree of 4-way fan-out whose directories sit
// at depths 1–5, so files are at depths 1–6, most of them deep.
func genTree(dir string, n int, seed uint64, listPath string) error {
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
	}
	src := rand.NewChaCha8(key)
	rng := rand.New(src)
	var paths []string
	flat := n / 10
	for d := 0; flat > 0; d++ {
		k := min(flat, 50000)
		for i := range k {
			paths = append(paths, fmt.Sprintf("photos/%d/DCIM/IMG_%05d.jpg", 2015+d, i))
		}
		flat -= k
	}
	top := max(1, n/62500)
	var dirs []string
	var grow func(p string, depth int)
	grow = func(p string, depth int) {
		dirs = append(dirs, p)
		if depth == 5 {
			return
		}
		for i := range 4 {
			grow(fmt.Sprintf("%s/%s%d", p, []string{"src", "lib", "docs", "test"}[i], depth), depth+1)
		}
	}
	for t := range top {
		grow(fmt.Sprintf("proj-%02d", t), 1)
	}
	for i := 0; len(paths) < n; i++ {
		if i < 20 {
			paths = append(paths, fmt.Sprintf("notes-%02d.txt", i))
			continue
		}
		d := dirs[rng.IntN(len(dirs))]
		paths = append(paths, fmt.Sprintf("%s/file-%07d.%s", d, i, []string{"go", "c", "txt", "md", "json"}[i%5]))
	}
	made := map[string]bool{}
	buf := make([]byte, 4096)
	w, err := os.Create(listPath)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, p := range paths {
		full := filepath.Join(dir, p)
		if d := filepath.Dir(full); !made[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			made[d] = true
		}
		b := buf[:1+rng.IntN(len(buf))]
		src.Read(b)
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(bw, p)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return w.Close()
}

// modify appends a line to n files of the list, spread evenly, with 8
// writers (through a mount, one writer would measure FUSE round trips, not
// the state being built).
func modify(root, listPath string, n, off int) error {
	b, err := os.ReadFile(listPath)
	if err != nil {
		return err
	}
	all := strings.Split(strings.TrimSpace(string(b)), "\n")
	if n <= 0 || len(all) == 0 {
		return nil
	}
	step := max(1, len(all)/n)
	var pick []string
	for i := 0; i < n && i*step < len(all); i++ {
		pick = append(pick, all[(i*step+off)%len(all)])
	}
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	stamp := fmt.Sprintf("changed %v\n", time.Now().UnixNano())
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(pick) || first.Load() != nil {
					return
				}
				f, err := os.OpenFile(filepath.Join(root, pick[i]), os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					_, err = f.WriteString(stamp)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

// fuseLoop is the small-file loop of an editor or a build: create, write,
// close, then stat, one file at a time.
func fuseLoop(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data := []byte(strings.Repeat("x", 99) + "\n")
	t0 := time.Now()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d", i)), data, 0o644); err != nil {
			return err
		}
	}
	t1 := time.Now()
	order := make([]int, n)
	for i := range order {
		order[i] = (i * 7919) % n // a permutation unless 7919 divides n: not in creation order
	}
	for _, i := range order {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("f%06d", i))); err != nil {
			return err
		}
	}
	t2 := time.Now()
	fmt.Printf("%.0f %.0f\n", float64(n)/t1.Sub(t0).Seconds(), float64(n)/t2.Sub(t1).Seconds())
	return nil
}
