//go:build !freebsd

// Copyright 2024 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
package fs

import (
	"context"
	"syscall"

	"golang.org/x/sys/unix"
)

var _ = (NodeListxattrer)((*LoopbackNode)(nil))

func (n *LoopbackNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	var sz int
	errno := n.withXattrPath(func(p string) (err error) {
		sz, err = unix.Listxattr(p, dest)
		return err
	})
	return uint32(sz), errno
}
