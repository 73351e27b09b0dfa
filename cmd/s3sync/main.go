// Command s3sync keeps a local folder mirrored to S3 or any S3-compatible
// store. This package owns flags, configuration, wiring, exit codes and
// human output; the sync logic lives in packages syncer (one-shot) and
// mirror (the mount's long-running side).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// memoryLimit is the Go heap's soft limit unless GOMEMLIMIT sets another:
// under the 150 MiB peak RSS that every command keeps at a million files
// (make bench-scale), with room for what is not heap.
const memoryLimit = 100 << 20

// mountMemoryLimit is the mount's instead: its resident memory also counts
// the pages of the state file its journal's commits map (with its own
// binary's, up to about 50 MiB in a day offline at a million files), and its
// live heap is mostly go-fuse's nodes (--max-cached-inodes), which the 2x
// rule of heapLimit covers.
const mountMemoryLimit = 72 << 20

// heapFloor is the soft limit while little is live: memoryLimit, or what
// the command set (lowerHeapLimit); zero when GOMEMLIMIT rules.
var heapFloor atomic.Int64

// boundHeap sets the heap's soft limit to memoryLimit and then follows the
// live heap with heapLimit, until stop is called.
func boundHeap() (stop func()) {
	heapFloor.Store(memoryLimit)
	debug.SetMemoryLimit(memoryLimit)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			debug.SetMemoryLimit(heapLimit(heapFloor.Load(), liveHeap()))
		}
	}()
	return func() { close(done) }
}

// lowerHeapLimit makes floor the heap's soft limit instead of memoryLimit,
// unless GOMEMLIMIT set one.
func lowerHeapLimit(floor int64) {
	if heapFloor.Load() == 0 {
		return
	}
	heapFloor.Store(floor)
	debug.SetMemoryLimit(heapLimit(floor, liveHeap()))
}

// liveHeap is the heap live at the last collection.
func liveHeap() uint64 {
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	if live[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return live[0].Value.Uint64()
}

// heapLimit is floor, or twice the live heap when that is more: a fixed
// limit under what is live (a mount whose kernel holds a node for each of
// many files looked up: about 500 bytes each) would have the collector run
// back to back; twice is GOGC=100 there.
func heapLimit(floor int64, live uint64) int64 {
	return max(floor, 2*int64(live))
}

// Exit codes, as documented in the README.
const (
	exitOK      = 0
	exitFailed  = 1 // some transfers failed, or the command could not run
	exitSkipped = 2 // some files were skipped, or the command line was wrong
)

// exitError carries an exit code and an optional one-line message; help
// adds the pointer to --help. Any other error means exit 1.
type exitError struct {
	code int
	msg  string
	help bool
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, a ...any) error {
	return &exitError{code: exitSkipped, msg: fmt.Sprintf(format, a...)}
}

func main() {
	// A key on the command line leaves /proc/PID/cmdline first
	// (argvsecrets.go); only the copy is used.
	args := hideSecretArgs(os.Args)
	runStatfsProbe(args) // the mount's watchdog probe (notify.go) exits here
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Installed as /sbin/mount.s3sync, it is mount(8)'s helper (fstab.go).
	if filepath.Base(args[0]) == mountHelperName {
		os.Exit(runMountHelper(ctx, args[1:]))
	}
	os.Exit(run(ctx, args[1:]))
}

func run(ctx context.Context, args []string) int {
	// S3SYNC_CPUPROFILE=file writes a CPU profile, for `make bench` work.
	// Both profiles' files are opened as the log file is (openPrivate): a
	// symlink or another user's file at the path is refused, not followed
	// or overwritten.
	if path := os.Getenv("S3SYNC_CPUPROFILE"); path != "" {
		f, _, err := openPrivate(path, os.O_WRONLY, true)
		if err != nil {
			fmt.Fprintln(os.Stderr, "s3sync: S3SYNC_CPUPROFILE:", err)
		} else {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	// S3SYNC_MEMPROFILE=file writes a heap profile at exit: what was live
	// at the last collection, and every allocation made (pprof's
	// -sample_index=alloc_space); SIGUSR1 writes one at that moment.
	if path := os.Getenv("S3SYNC_MEMPROFILE"); path != "" {
		defer writeHeapProfile(path)
		defer heapProfileOnSignal(path)()
	}
	// The heap is small (listings stream) and most garbage is per-request
	// SDK plumbing: trading a little memory for fewer collections is a
	// clear win for many small transfers. GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// ... but not past memoryLimit: a million-file reconcile must stay
	// within it, and GOGC alone lets the heap grow to five times what is
	// live.
	if os.Getenv("GOMEMLIMIT") == "" {
		stop := boundHeap()
		defer stop()
	}
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(os.Stderr, "s3sync: "+ee.msg)
		}
		if ee.help {
			fmt.Fprintln(os.Stderr, "Run 's3sync --help' for usage.")
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "s3sync: "+err.Error())
	// The one usage error cobra makes before any of our code runs.
	if strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintln(os.Stderr, "Run 's3sync --help' for usage.")
		return exitSkipped
	}
	return exitFailed
}

// argsUsage makes a wrong number of arguments a usage error (exit 2).
func argsUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &exitError{code: exitSkipped, msg: err.Error(), help: true}
		}
		return nil
	}
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "s3sync",
		Short: "Keep a local folder mirrored to S3 or any S3-compatible store",
		Long: `s3sync mirrors a local folder to S3, Wasabi, MinIO or any S3-compatible store.

  s3sync reconcile SRC DST       one full sync, like 'aws s3 sync' (local→s3, s3→local, s3→s3)
  s3sync mount WORKDIR MOUNTPOINT s3://BUCKET[/PREFIX]
                                 work in MOUNTPOINT; every change is journaled and mirrored
  s3sync status WORKDIR          what is pending, failed, last synced
  s3sync verify SRC DST          prove DST holds what SRC holds: size, mtime, content
  s3sync ls / mb / rb            list, make and remove buckets

Credentials and endpoints come from the standard AWS chain (environment,
~/.aws/config and ~/.aws/credentials, AWS_PROFILE, endpoint_url in a profile).

Exit codes: 0 all done; 1 some transfers failed or the command could not run
(verify: some path differs); 2 some files were skipped, deletions were
refused (--max-delete), or the command line was wrong.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: checkFlagFiles,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitSkipped, msg: err.Error(), help: true}
	})
	g.register(root)
	addVersion(root)
	root.AddCommand(newReconcileCmd(g), newLsCmd(g), newMbCmd(g), newRbCmd(g))
	for _, c := range extraCommands {
		root.AddCommand(c(g))
	}
	return root
}

// extraCommands lets other files of this package add commands.
var extraCommands []func(*globalFlags) *cobra.Command

func writeHeapProfile(path string) {
	f, _, err := openPrivate(path, os.O_WRONLY, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3sync: S3SYNC_MEMPROFILE:", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "s3sync: S3SYNC_MEMPROFILE:", err)
	}
}
