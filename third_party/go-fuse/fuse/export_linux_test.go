// Copyright 2026 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fuse

// IoUringServed is how many requests ms answered over io_uring.
func IoUringServed(ms *Server) uint64 { return ms.uring.served.Load() }
