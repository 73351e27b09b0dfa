package fs

import (
	"log/slog"
	"sync"
	"syscall"
	"time"

	gofs "github.com/s3sync/s3sync/third_party/go-fuse/fs"
)

// The kernel keeps every inode it has looked up until memory pressure makes
// it forget one, and go-fuse keeps a node (about 600 bytes with its tree and
// table entries) for each of them. On a machine with memory to spare a tree
// of a million files walked once through the mount would hold ~600 MiB in
// this process for good. nodeLimit bounds that: past Options.MaxNodes it asks
// the kernel to forget the nodes it learnt of longest ago and has not opened
// since (FUSE_NOTIFY_PRUNE, Linux 6.18+; invalidating their entries on older
// kernels). A forgotten node costs one LOOKUP when it is next used. The
// kernel forgets only what nothing holds: open files, working directories
// and directories with cached children stay, and are tried again later.

// DefaultMaxNodes is Options.MaxNodes' default: about 30 MiB of nodes, most
// of a mount's live heap, whose soft limit is twice what is live or more
// (cmd/s3sync). Fewer would cost more than memory: a tree a little larger
// than the limit, listed again and again through the mount (find, git
// status), would have every node made anew at each listing, where READDIRPLUS
// refreshes the nodes kept.
// Keeping more saves little: with the 1 s entry and attribute timeouts the
// kernel looks up again anything unused for a second anyway, and a node
// forgotten since costs the same LOOKUP plus one allocation.
const DefaultMaxNodes = 50_000

// pruneBatch is how many nodes one notification asks the kernel to forget.
const pruneBatch = 1024

// lruLinks places a Node in its mount's nodeLimit list.
type lruLinks struct {
	prev, next *Node
}

type nodeLimit struct {
	max int // prune down to 9/10 of it once above it
	// entryOnly: the kernel has no FUSE_NOTIFY_PRUNE (or a test asked to
	// go without), so nodes are dropped by invalidating their entries.
	entryOnly bool

	mu sync.Mutex
	// head is the sentinel of the list of nodes the kernel knows, in the
	// order they were learnt or last found opened (oldest first).
	head Node
	n    int
	// asked counts the nodes in the list the kernel was asked to forget
	// (Node.pruneAsked) and has not yet: their FORGETs are on the way,
	// and they count as gone when deciding how many more to ask for.
	asked int

	wake chan struct{} // n went above max
}

func newNodeLimit(max int) *nodeLimit {
	l := &nodeLimit{max: max, wake: make(chan struct{}, 1)}
	l.head.lru = lruLinks{prev: &l.head, next: &l.head}
	return l
}

// add appends n, newly known to the kernel.
func (l *nodeLimit) add(n *Node) {
	l.mu.Lock()
	if n.lru.next == nil {
		l.insertLast(n)
		l.n++
	}
	over := l.n-l.asked > l.max
	l.mu.Unlock()
	if over {
		signal(l.wake)
	}
}

// remove takes out n, forgotten by the kernel.
func (l *nodeLimit) remove(n *Node) {
	l.mu.Lock()
	if n.lru.next != nil {
		l.unlink(n)
		l.n--
		if n.pruneAsked {
			n.pruneAsked = false
			l.asked--
		}
	}
	l.mu.Unlock()
}

func (l *nodeLimit) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// notAsked is how many nodes the kernel holds and was not asked to forget.
func (l *nodeLimit) notAsked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n - l.asked
}

func (l *nodeLimit) insertLast(n *Node) {
	last := l.head.lru.prev
	n.lru = lruLinks{prev: last, next: &l.head}
	last.lru.next = n
	l.head.lru.prev = n
}

func (l *nodeLimit) unlink(n *Node) {
	n.lru.prev.lru.next = n.lru.next
	n.lru.next.lru.prev = n.lru.prev
	n.lru = lruLinks{}
}

// pick takes up to want nodes from the front that may be forgotten, moving
// every node it looks at to the back: a node opened since it was last
// looked at gets another round, as does one that is open now. It looks at
// no more than limit nodes.
func (l *nodeLimit) pick(want, limit int) (batch []*Node, looked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for looked < limit && len(batch) < want {
		n := l.head.lru.next
		if n == &l.head {
			break
		}
		looked++
		l.unlink(n)
		l.insertLast(n)
		if n.pruneAsked {
			// Asked a whole round ago and still held: the kernel
			// keeps it (a working directory, an open file). It may
			// be asked again next round.
			n.pruneAsked = false
			l.asked--
			continue
		}
		if n.used.Swap(false) || n.opened.Load() > 0 {
			continue
		}
		n.pruneAsked = true
		l.asked++
		batch = append(batch, n)
	}
	return batch, looked
}

// run keeps the nodes at or under max until stop.
func (l *nodeLimit) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-l.wake:
		}
		l.shrink(stop)
	}
}

// shrink asks the kernel to forget nodes until at most 9/10 of max are
// left, or until a whole round of the list found nothing it would forget;
// it then waits for the next wake.
func (l *nodeLimit) shrink(stop <-chan struct{}) {
	low := l.max - l.max/10
	looked := 0
	for {
		n := l.notAsked()
		if n <= low {
			return
		}
		if looked > l.count() {
			// A whole round asked for all it could; what is left is
			// held by the kernel. Look again after a while.
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			looked = 0
			continue
		}
		batch, lk := l.pick(min(n-low, pruneBatch), pruneBatch*4)
		looked += lk
		if len(batch) == 0 {
			continue
		}
		l.forget(batch)
	}
}

// forget asks the kernel to forget batch.
func (l *nodeLimit) forget(batch []*Node) {
	if !l.entryOnly {
		ins := make([]*gofs.Inode, len(batch))
		for i, n := range batch {
			ins[i] = n.EmbeddedInode()
		}
		errno := ins[0].NotifyPrune(ins)
		if errno == 0 {
			return
		}
		if errno != syscall.ENOSYS {
			slog.Debug("fs: prune notification", "err", errno)
			return
		}
		slog.Debug("fs: the kernel has no prune notification; invalidating entries instead")
		l.entryOnly = true
	}
	for _, n := range batch {
		// Only the node's newest name: a hard link's other names are
		// rare, and the node stays known until those go too.
		name, parent := n.EmbeddedInode().Parent()
		if parent == nil {
			continue // unlinked and open, or gone meanwhile
		}
		if errno := parent.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
			slog.Debug("fs: entry notification", "name", name, "err", errno)
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// OnKernelAdd is called by go-fuse when the kernel learns of n.
func (n *Node) OnKernelAdd() { n.m.nodes.add(n) }

// OnForget is called by go-fuse when the kernel has forgotten n.
func (n *Node) OnForget() { n.m.nodes.remove(n) }
