// Copyright 2026 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fuse

// Upstream is the go-fuse release this copy started from. It is s3sync's
// fork (third_party/go-fuse, imported by its path inside s3sync's module),
// with the patches its git log lists; `s3sync --version` prints it, as the
// copy is no module of its own that the build info could name.
const Upstream = "github.com/hanwen/go-fuse/v2 v2.12.1"
