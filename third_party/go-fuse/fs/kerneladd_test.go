// Copyright 2026 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fs

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3sync/s3sync/third_party/go-fuse/internal/testutil"
)

// kernelAddNode is a loopback node that counts the nodes the kernel
// holds, through OnKernelAdd and OnForget.
type kernelAddNode struct {
	*LoopbackNode
	live *atomic.Int64
}

func (n *kernelAddNode) OnKernelAdd() { n.live.Add(1) }
func (n *kernelAddNode) OnForget()    { n.live.Add(-1) }

func (n *kernelAddNode) WrapChild(ctx context.Context, ops InodeEmbedder) InodeEmbedder {
	return &kernelAddNode{LoopbackNode: ops.(*LoopbackNode), live: n.live}
}

// TestOnKernelAdd: every LOOKUP of a file the kernel already knows makes a
// node that is dropped unused (OnAdd is called on it); OnKernelAdd is not,
// so with OnForget it counts exactly the nodes the kernel holds.
func TestOnKernelAdd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("must run test as root")
	}
	orig := t.TempDir()
	for _, name := range []string{"a", "b", "c"} {
		if err := os.WriteFile(filepath.Join(orig, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var live atomic.Int64
	lr := &LoopbackRoot{Path: orig}
	root := &kernelAddNode{LoopbackNode: &LoopbackNode{RootData: lr}, live: &live}
	lr.RootNode = root
	zero := time.Duration(0)
	opts := &Options{EntryTimeout: &zero, AttrTimeout: &zero}
	opts.Debug = testutil.VerboseTest()
	mnt := t.TempDir()
	srv, err := Mount(mnt, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Unmount()

	// With no entry caching, each stat is a LOOKUP of a known node.
	for i := 0; i < 10; i++ {
		for _, name := range []string{"a", "b", "c"} {
			if _, err := os.Stat(filepath.Join(mnt, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := live.Load(); got != 3 {
		t.Fatalf("OnKernelAdd minus OnForget = %d after 30 lookups of 3 files, want 3", got)
	}
	var nodes []*Inode
	for _, ch := range root.Children() {
		nodes = append(nodes, ch)
	}
	if errno := root.NotifyPrune(nodes); errno == syscall.ENOSYS {
		t.Skip("kernel has no FUSE_NOTIFY_PRUNE")
	} else if errno != 0 {
		t.Fatalf("NotifyPrune: %v", errno)
	}
	for deadline := time.Now().Add(5 * time.Second); live.Load() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after pruning all: %d nodes counted live, want 0", live.Load())
		}
	}
	if _, err := os.Stat(filepath.Join(mnt, "a")); err != nil {
		t.Fatal(err)
	}
	if got := live.Load(); got != 1 {
		t.Fatalf("after one more lookup: %d live, want 1", got)
	}
}
