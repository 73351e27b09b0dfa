// Copyright 2026 the Go-FUSE Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package fuse

// FUSE-over-io_uring (Linux 6.14+, Documentation/filesystems/fuse/fuse-io-uring.rst).
//
// INIT is still read from and answered on /dev/fuse. If the reply
// carries CAP_OVER_IO_URING, the kernel waits until every one of its
// per-CPU queues has a buffer registered (FUSE_IO_URING_CMD_REGISTER,
// an IORING_OP_URING_CMD on the /dev/fuse fd), and from then on puts
// each request into a buffer of the queue of the CPU the caller runs
// on and completes that command. We answer in the same buffer and
// hand it back with FUSE_IO_URING_CMD_COMMIT_AND_FETCH, which also
// waits for the next request: one system call per request instead of
// a read and a write. FORGET, INTERRUPT and notifications keep using
// /dev/fuse, so the ordinary reader loop keeps running.
//
// Each serving thread owns one ring (so the kernel's task work for it
// lands on the thread that waits for it) and, by default, one request
// buffer; it runs each request inline and commits the answer. Rings
// and buffers are set up before the INIT reply, so a failure there
// only means the reply does not offer io_uring.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// include/uapi/linux/io_uring.h
	ioringOpURingCmd      = 46
	ioringSetupCQSize     = 1 << 3
	ioringSetupSQE128     = 1 << 10
	ioringFeatSingleMmap  = 1 << 0
	ioringEnterGetEvents  = 1 << 0
	ioringOffSQRing       = 0
	ioringOffSQEs         = 0x10000000
	ioringSQE128Size      = 128
	ioringCQESize         = 16
	ioringRegisterFiles   = 2
	ioringSQEFixedFile    = 1 << 0
	fuseURingCmdRegister  = 1
	fuseURingCmdCommit    = 2
	fuseURingHeaderOpIn   = 128
	fuseURingHeaderEntry  = 256
	fuseURingHeaderSize   = 288
	fuseMinReadBuffer     = 8192
	defaultURingPerQueue  = 1
	defaultURingDepth     = 8
	ioringOpRead          = 22
	eventfdTag            = 1 << 32 // user data of the eventfd read
	uringRegisterAttempts = 1000
)

// ioURingParams is struct io_uring_params.
type ioURingParams struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFD         uint32
	resv         [3]uint32
	sqOff        struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// ioURingSQE is a 128-byte struct io_uring_sqe set up for
// IORING_OP_URING_CMD, with struct fuse_uring_cmd_req in its command
// area.
type ioURingSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	cmdOp       uint32
	pad1        uint32
	addr        uint64
	len         uint32
	cmdFlags    uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	fileIndex   int32
	reqFlags    uint64
	commitID    uint64
	qid         uint16
	_           [6]uint8
	_           [56]uint8
}

// fuseURingEntInOut is struct fuse_uring_ent_in_out.
type fuseURingEntInOut struct {
	flags     uint64
	commitID  uint64
	payloadSz uint32
	padding   uint32
	reserved  uint64
}

// ioRing is one io_uring instance, used by one thread only.
type ioRing struct {
	fd      int
	ringMem []byte
	sqeMem  []byte
	sqHead  *uint32
	sqTail  *uint32
	sqMask  uint32
	sqArray unsafe.Pointer
	cqHead  *uint32
	cqTail  *uint32
	cqMask  uint32
	cqes    unsafe.Pointer
	tail    uint32
}

func newIoRing(entries uint32) (*ioRing, error) {
	p := ioURingParams{flags: ioringSetupSQE128 | ioringSetupCQSize, cqEntries: 2 * entries}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &ioRing{fd: int(fd)}
	if p.features&ioringFeatSingleMmap == 0 {
		r.close()
		return nil, errors.New("io_uring_setup: kernel lacks IORING_FEAT_SINGLE_MMAP")
	}
	size := max(p.sqOff.array+4*p.sqEntries, p.cqOff.cqes+ioringCQESize*p.cqEntries)
	var err error
	if r.ringMem, err = unix.Mmap(r.fd, ioringOffSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, fmt.Errorf("io_uring mmap: %w", err)
	}
	if r.sqeMem, err = unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries*ioringSQE128Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		r.close()
		return nil, fmt.Errorf("io_uring mmap: %w", err)
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&r.ringMem[off]) }
	r.sqHead = (*uint32)(at(p.sqOff.head))
	r.sqTail = (*uint32)(at(p.sqOff.tail))
	r.sqMask = *(*uint32)(at(p.sqOff.ringMask))
	r.sqArray = at(p.sqOff.array)
	r.cqHead = (*uint32)(at(p.cqOff.head))
	r.cqTail = (*uint32)(at(p.cqOff.tail))
	r.cqMask = *(*uint32)(at(p.cqOff.ringMask))
	r.cqes = at(p.cqOff.cqes)
	r.tail = atomic.LoadUint32(r.sqTail)
	return r, nil
}

// registerFile makes fd the ring's fixed file 0, which saves a file
// table lookup on every command.
func (r *ioRing) registerFile(fd int) error {
	fds := [1]int32{int32(fd)}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegisterFiles, uintptr(unsafe.Pointer(&fds[0])), 1, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// nextSQE returns a cleared SQE; push queues it. The caller never has
// more SQEs queued than the ring has entries (one per buffer).
func (r *ioRing) nextSQE() *ioURingSQE {
	idx := r.tail & r.sqMask
	sqe := (*ioURingSQE)(unsafe.Pointer(&r.sqeMem[uintptr(idx)*ioringSQE128Size]))
	*sqe = ioURingSQE{}
	return sqe
}

func (r *ioRing) push() {
	idx := r.tail & r.sqMask
	*(*uint32)(unsafe.Add(r.sqArray, 4*uintptr(idx))) = idx
	r.tail++
	atomic.StoreUint32(r.sqTail, r.tail)
}

func (r *ioRing) pending() uint32 {
	return r.tail - atomic.LoadUint32(r.sqHead)
}

// enter submits what is queued and waits for at least minComplete
// completions.
func (r *ioRing) enter(minComplete uint32) syscall.Errno {
	flags := uintptr(0)
	if minComplete > 0 {
		flags = ioringEnterGetEvents
	}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.pending()), uintptr(minComplete), flags, 0, 0)
	return errno
}

// completions calls f for each completion (user data, result) and
// then frees their slots.
func (r *ioRing) completions(f func(userData uint64, res int32)) {
	head := atomic.LoadUint32(r.cqHead)
	tail := atomic.LoadUint32(r.cqTail)
	for ; head != tail; head++ {
		cqe := unsafe.Add(r.cqes, uintptr(head&r.cqMask)*ioringCQESize)
		f(*(*uint64)(cqe), *(*int32)(unsafe.Add(cqe, 8)))
	}
	atomic.StoreUint32(r.cqHead, head)
}

func (r *ioRing) close() {
	if r.sqeMem != nil {
		unix.Munmap(r.sqeMem)
		r.sqeMem = nil
	}
	if r.ringMem != nil {
		unix.Munmap(r.ringMem)
		r.ringMem = nil
	}
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// uringEnt is one request buffer registered with the kernel.
type uringEnt struct {
	header  []byte // struct fuse_uring_req_header
	payload []byte
	iov     [2]unix.Iovec
	lastCmd uint32
	dead    bool
	req     requestAlloc // reused for every request, saving an allocation each
}

// uringThread serves one ring of one queue.
type uringThread struct {
	srv  *Server
	qid  int
	ring *ioRing
	mem  []byte
	ents []uringEnt

	// A request that may wait (see mayWait) is served on its own
	// goroutine, which leaves its answer in ready and writes efd; the
	// ring holds a read of efd, so the thread wakes and commits it.
	efd    int
	efdBuf [8]byte
	mu     sync.Mutex
	ready  []handedOff
	spare  []handedOff
}

// handedOff is a request answered on its own goroutine.
type handedOff struct {
	ent      int
	commitID uint64
}

// uringServer is the io_uring side of a Server.
type uringServer struct {
	threads []*uringThread

	mu  sync.Mutex
	err error // why requests are not served over io_uring; nil while they are

	served atomic.Uint64 // requests answered over io_uring, for tests
}

func (u *uringServer) setErr(err error) {
	u.mu.Lock()
	if u.err == nil {
		u.err = err
	}
	u.mu.Unlock()
}

// IoUringErr is nil when requests are served over io_uring, and
// otherwise says why they are not (not asked for, kernel without it,
// io_uring unavailable to this process, ...). It is final once
// WaitMount has returned.
func (ms *Server) IoUringErr() error {
	ms.uring.mu.Lock()
	defer ms.uring.mu.Unlock()
	return ms.uring.err
}

// ErrIoUringNotRequested is what IoUringErr says when MountOptions
// did not ask for io_uring.
var ErrIoUringNotRequested = errors.New("io_uring not requested")

// possibleCPUs is the kernel's number of request queues
// (num_possible_cpus).
func possibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, found := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if found {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			return runtime.NumCPU()
		}
		n += z - a + 1
	}
	return n
}

// prepareIoUring sets up the rings and buffers, before the mount, and
// asks for io_uring in the INIT reply if that worked.
func (ms *Server) prepareIoUring() {
	if !ms.opts.EnableIoUring {
		ms.uring.err = ErrIoUringNotRequested
		return
	}
	perQueue := ms.opts.IoUringThreadsPerQueue
	if perQueue <= 0 {
		perQueue = defaultURingPerQueue
	}
	depth := ms.opts.IoUringQueueDepth
	if depth <= 0 {
		depth = 1
		if perQueue == 1 {
			depth = defaultURingDepth
		}
	}
	page := os.Getpagesize()
	// The kernel wants room for max(FUSE_MIN_READ_BUFFER, max_write,
	// max_pages pages) in every buffer.
	payload := max(fuseMinReadBuffer, (ms.opts.MaxWrite+page-1)/page*page, _FUSE_DEFAULT_MAX_PAGES_PER_REQ*page)
	nq := possibleCPUs()
	for qid := 0; qid < nq; qid++ {
		for i := 0; i < perQueue; i++ {
			t, err := newURingThread(ms, qid, depth, page, payload)
			if err != nil {
				ms.closeIoUring()
				ms.uring.err = err
				return
			}
			ms.uring.threads = append(ms.uring.threads, t)
		}
	}
	ms.opts.ExtraCapabilities |= CAP_OVER_IO_URING
}

func newURingThread(ms *Server, qid, depth, page, payload int) (*uringThread, error) {
	// One SQE per buffer and one for the eventfd read.
	ring, err := newIoRing(uint32(depth + 1))
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		ring.close()
		return nil, fmt.Errorf("io_uring eventfd: %w", err)
	}
	per := page + payload
	mem, err := unix.Mmap(-1, 0, depth*per, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		ring.close()
		unix.Close(efd)
		return nil, fmt.Errorf("io_uring buffers: %w", err)
	}
	t := &uringThread{srv: ms, qid: qid, ring: ring, mem: mem, ents: make([]uringEnt, depth), efd: efd}
	for i := range t.ents {
		e := &t.ents[i]
		e.header = mem[i*per : i*per+fuseURingHeaderSize]
		e.payload = mem[i*per+page : (i+1)*per]
		e.iov[0].Base = &e.header[0]
		e.iov[0].SetLen(len(e.header))
		e.iov[1].Base = &e.payload[0]
		e.iov[1].SetLen(len(e.payload))
	}
	return t, nil
}

// afterInitIoUring drops the rings if the INIT reply did not switch
// the connection to io_uring.
func (ms *Server) afterInitIoUring() {
	if len(ms.uring.threads) == 0 {
		return
	}
	if ms.negotiatedFlags&CAP_OVER_IO_URING != 0 {
		return
	}
	ms.closeIoUring()
	why := "kernel did not offer it (needs Linux 6.14+ and fuse module parameter enable_uring=Y)"
	if ms.kernelSettings.Flags64()&CAP_OVER_IO_URING != 0 {
		why = "capability disabled by DisabledCapabilities"
	}
	ms.uring.err = errors.New("io_uring: " + why)
}

// startIoUring registers every buffer with the kernel and starts
// serving. It returns once every registration has been handed to the
// kernel, so that a registration the kernel refused is known (and the
// kernel has fallen back to /dev/fuse) before anything is served.
func (ms *Server) startIoUring() {
	if len(ms.uring.threads) == 0 {
		return
	}
	var fd int
	if err := ms.fuseFD.withFD(func(f int) { fd = f }); err != nil {
		ms.closeIoUring()
		ms.uring.setErr(fmt.Errorf("io_uring: %w", err))
		return
	}
	var registered sync.WaitGroup
	for _, t := range ms.uring.threads {
		registered.Add(1)
		ms.fuseFD.loops.Add(1)
		go t.run(fd, &registered)
	}
	registered.Wait()
}

// closeIoUring releases rings and buffers once no thread uses them.
func (ms *Server) closeIoUring() {
	for _, t := range ms.uring.threads {
		t.ring.close()
		if t.mem != nil {
			unix.Munmap(t.mem)
			t.mem = nil
		}
		if t.efd >= 0 {
			unix.Close(t.efd)
			t.efd = -1
		}
	}
	ms.uring.threads = nil
}

func (t *uringThread) run(fuseFD int, registered *sync.WaitGroup) {
	defer t.srv.fuseFD.loops.Done()
	// The kernel completes a command with task work on the thread that
	// submitted it, so the ring stays with one thread, and that thread
	// should run where the queue's requests come from.
	// The thread is never unlocked: pinned to one CPU, it must not go
	// back to run other goroutines, so it ends with this one.
	runtime.LockOSThread()
	var cpus unix.CPUSet
	cpus.Set(t.qid)
	unix.SchedSetaffinity(0, &cpus) // fails harmlessly if the CPU is not ours

	fixed := t.ring.registerFile(fuseFD) == nil
	for i := range t.ents {
		t.queue(i, fuseURingCmdRegister, 0, fuseFD, fixed)
	}
	errno := t.ring.enter(0)
	if errno == 0 {
		t.reap(fuseFD, fixed)
	}
	if errno != 0 {
		t.srv.uring.setErr(fmt.Errorf("io_uring: register: %w", errno))
	} else if t.live() == 0 {
		t.srv.uring.setErr(errors.New("io_uring: the kernel refused every buffer"))
	}
	registered.Done()
	if errno != 0 {
		return
	}

	t.armEventfd()
	for t.live() > 0 {
		errno := t.ring.enter(1)
		switch errno {
		case 0, syscall.EINTR, syscall.EAGAIN, syscall.EBUSY:
		default:
			t.srv.opts.Logger.Printf("io_uring queue %d: io_uring_enter: %v", t.qid, errno)
			return
		}
		t.reap(fuseFD, fixed)
	}
}

func (t *uringThread) live() int {
	n := 0
	for i := range t.ents {
		if !t.ents[i].dead {
			n++
		}
	}
	return n
}

// reap serves every completed command and queues its answer.
func (t *uringThread) reap(fuseFD int, fixed bool) {
	t.ring.completions(func(userData uint64, res int32) {
		if userData == eventfdTag {
			t.commitHandedOff(fuseFD, fixed)
			if res >= 0 || res == -int32(syscall.EINTR) || res == -int32(syscall.EAGAIN) {
				t.armEventfd()
			}
			return
		}
		i := int(userData)
		e := &t.ents[i]
		switch {
		case res == 0:
			t.srv.uring.served.Add(1)
			if mayWait((*InHeader)(unsafe.Pointer(&e.header[0])).Opcode) {
				go t.serveHandedOff(i)
				return
			}
			commitID := t.serve(e)
			t.queue(i, fuseURingCmdCommit, commitID, fuseFD, fixed)
		case res == -int32(syscall.EAGAIN) || res == -int32(syscall.EINTR):
			// REGISTER before INIT was fully processed: try again.
			time.Sleep(time.Millisecond)
			t.queue(i, e.lastCmd, (*fuseURingEntInOut)(unsafe.Pointer(&e.header[fuseURingHeaderEntry])).commitID, fuseFD, fixed)
		case res == -int32(syscall.ENOTCONN) || res == -int32(syscall.ECONNABORTED) || res == -int32(syscall.ECANCELED):
			// Unmounted or aborted.
			e.dead = true
		default:
			e.dead = true
			err := fmt.Errorf("io_uring queue %d: command %d: %w", t.qid, e.lastCmd, syscall.Errno(-res))
			if e.lastCmd == fuseURingCmdRegister {
				t.srv.uring.setErr(err)
			}
			t.srv.opts.Logger.Print(err)
		}
	})
}

// mayWait says whether a request may take long in the filesystem (disk
// I/O, fsync, locks): it is then served on its own goroutine, so that it
// does not hold up the other requests from its CPU, which one thread
// serves. The rest are served inline, on the thread that will commit the
// answer: no hand-off between threads, the cheapest round trip.
func mayWait(op uint32) bool {
	switch op {
	case _OP_READ, _OP_WRITE, _OP_FSYNC, _OP_FSYNCDIR, _OP_FLUSH,
		_OP_GETLK, _OP_SETLK, _OP_SETLKW, _OP_IOCTL, _OP_POLL,
		_OP_FALLOCATE, _OP_LSEEK, _OP_COPY_FILE_RANGE, _OP_COPY_FILE_RANGE_64:
		return true
	}
	return false
}

// serveHandedOff serves ent i's request and hands the answer back to the
// ring's thread.
func (t *uringThread) serveHandedOff(i int) {
	commitID := t.serve(&t.ents[i])
	t.mu.Lock()
	t.ready = append(t.ready, handedOff{ent: i, commitID: commitID})
	t.mu.Unlock()
	one := [8]byte{1}
	// An eventfd write fails only when the counter would overflow.
	unix.Write(t.efd, one[:])
}

// commitHandedOff queues the commits of the answers served on their own
// goroutines.
func (t *uringThread) commitHandedOff(fuseFD int, fixed bool) {
	t.mu.Lock()
	ready := t.ready
	t.ready = t.spare[:0]
	t.mu.Unlock()
	for _, h := range ready {
		t.queue(h.ent, fuseURingCmdCommit, h.commitID, fuseFD, fixed)
	}
	t.spare = ready
}

// armEventfd queues a read of the eventfd: it completes when a request
// served on its own goroutine has its answer ready.
func (t *uringThread) armEventfd() {
	sqe := t.ring.nextSQE()
	sqe.opcode = ioringOpRead
	sqe.fd = int32(t.efd)
	sqe.cmdOp, sqe.pad1 = ^uint32(0), ^uint32(0) // offset -1: the file's position
	sqe.addr = uint64(uintptr(unsafe.Pointer(&t.efdBuf[0])))
	sqe.len = uint32(len(t.efdBuf))
	sqe.userData = eventfdTag
	t.ring.push()
}

func (t *uringThread) queue(i int, cmd uint32, commitID uint64, fuseFD int, fixed bool) {
	e := &t.ents[i]
	e.lastCmd = cmd
	sqe := t.ring.nextSQE()
	sqe.opcode = ioringOpURingCmd
	sqe.fd = int32(fuseFD)
	if fixed {
		sqe.flags = ioringSQEFixedFile
		sqe.fd = 0
	}
	sqe.cmdOp = cmd
	sqe.userData = uint64(i)
	sqe.qid = uint16(t.qid)
	if cmd == fuseURingCmdRegister {
		sqe.addr = uint64(uintptr(unsafe.Pointer(&e.iov[0])))
		sqe.len = uint32(len(e.iov))
	} else {
		sqe.commitID = commitID
	}
	t.ring.push()
}

// serve answers the request in e's buffers and returns its commit id.
func (t *uringThread) serve(e *uringEnt) uint64 {
	hdr := e.header
	in := (*InHeader)(unsafe.Pointer(&hdr[0]))
	ent := (*fuseURingEntInOut)(unsafe.Pointer(&hdr[fuseURingHeaderEntry]))
	commitID := ent.commitID
	unique := in.Unique
	payloadSz := int(ent.payloadSz)
	const inHeaderSize = int(unsafe.Sizeof(InHeader{}))
	// The kernel puts the opcode's own struct in op_in and everything
	// after it in the payload; the header's length covers both.
	opSz := int(in.Length) - inHeaderSize - payloadSz

	var n int
	code := EIO
	if opSz >= 0 && opSz <= fuseURingHeaderEntry-fuseURingHeaderOpIn && payloadSz <= len(e.payload) {
		payload := e.payload[:payloadSz]
		switch in.Opcode {
		case _OP_GETXATTR, _OP_IOCTL:
			// The answer is written over the payload while the
			// request's own payload may still be read.
			payload = append([]byte(nil), payload...)
		}
		iovIn := [3][]byte{hdr[:inHeaderSize], hdr[fuseURingHeaderOpIn : fuseURingHeaderOpIn+opSz], payload}
		iovOut := [2][]byte{hdr[:sizeOfOutHeader], e.payload}
		if t.srv.opts.SingleThreaded {
			t.srv.requestProcessingMu.Lock()
		}
		r := &e.req
		if r.cancel == nil || r.interrupted {
			// An interrupt closed the channel; the request has left
			// the in-flight list, so nothing else can see it now.
			r.cancel = make(chan struct{})
			r.interrupted = false
		}
		r.clear()
		n, code = t.srv.protocolServer.handleIovReq(r, iovIn[:], iovOut[:])
		if t.srv.opts.SingleThreaded {
			t.srv.requestProcessingMu.Unlock()
		}
	}
	if !code.Ok() || n < int(sizeOfOutHeader) {
		if code.Ok() {
			code = EIO
		}
		out := (*OutHeader)(unsafe.Pointer(&hdr[0]))
		*out = OutHeader{Length: uint32(sizeOfOutHeader), Status: -int32(code), Unique: unique}
		n = int(sizeOfOutHeader)
	}
	ent.payloadSz = uint32(n - int(sizeOfOutHeader))
	return commitID
}
