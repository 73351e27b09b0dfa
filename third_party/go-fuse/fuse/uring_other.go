// Copyright 2026 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

//go:build !linux

package fuse

import "errors"

// ErrIoUringNotRequested is what IoUringErr says when MountOptions
// did not ask for io_uring.
var ErrIoUringNotRequested = errors.New("io_uring not requested")

type uringServer struct{ err error }

// IoUringErr says why requests are not served over io_uring, which
// only Linux has.
func (ms *Server) IoUringErr() error { return ms.uring.err }

func (ms *Server) prepareIoUring() {
	ms.uring.err = ErrIoUringNotRequested
	if ms.opts.EnableIoUring {
		ms.uring.err = errors.New("io_uring: FUSE over io_uring is Linux only")
	}
}

func (ms *Server) afterInitIoUring() {}
func (ms *Server) startIoUring()     {}
func (ms *Server) closeIoUring()     {}
