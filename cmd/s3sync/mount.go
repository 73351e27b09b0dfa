package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	s3fs "github.com/s3sync/s3sync/fs"
	"github.com/s3sync/s3sync/internal/confine"
	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
)

func init() {
	extraCommands = append(extraCommands, newMountCmd, newStatusCmd)
}

func newMountCmd(g *globalFlags) *cobra.Command {
	var (
		ioURing      ioURingMode
		sf           syncFlags
		settle       time.Duration
		stateDir     string
		drainOnExit  bool
		drainTimeout time.Duration
		debugFUSE    bool
		noPass       bool
		xattrs       bool
		adopt        bool
		pull         time.Duration
		obs          observeFlags
		maxInodes    int
		allowOther   bool
	)
	c := &cobra.Command{
		Use:   "mount [flags] WORKDIR MOUNTPOINT s3://BUCKET[/PREFIX]",
		Short: "Serve WORKDIR at MOUNTPOINT and mirror every change made there to the bucket",
		Long: `Serve WORKDIR at MOUNTPOINT through FUSE. Work in MOUNTPOINT with any tool; every
change is journaled durably and a background syncer sends it to the bucket by
the rules of 'aws s3 sync'. The mount stays fully usable offline; changes are
sent when the endpoint returns. Changes made in WORKDIR while it was not
mounted are found and sent at the next mount.

Runs in the foreground; Ctrl-C or SIGTERM unmounts. 's3sync status WORKDIR'
shows what is pending or failed.`,
		Args: argsUsage(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sf.validate(); err != nil {
				return err
			}
			if settle < 0 {
				return usageErr("--settle must not be negative")
			}
			if pull < 0 {
				return usageErr("--pull must not be negative")
			}
			if err := obs.validate(); err != nil {
				return err
			}
			if err := ioURing.validate(); err != nil {
				return err
			}
			if maxInodes < 0 {
				return usageErr("--max-cached-inodes must not be negative (0 means no limit)")
			}
			m := &mounter{ioURing: ioURing, g: g, sf: sf, settle: settle, stateDir: stateDir, drainOnExit: drainOnExit,
				drainTimeout: drainTimeout, debug: debugFUSE, noPassthrough: noPass, xattrs: xattrs, adopt: adopt, pull: pull, obs: obs}
			m.allowOther = allowOther
			m.maxInodes = maxInodes
			return m.run(cmd.Context(), args[0], args[1], args[2])
		},
	}
	f := c.Flags()
	sf.register(f)
	f.DurationVar(&settle, "settle", time.Second, "how long a changed file must stay unchanged before it is uploaded")
	f.StringVar(&stateDir, "state-dir", "", "where the journal and cache live (default: $XDG_STATE_HOME/s3sync/<workdir>-<hash>)")
	f.BoolVar(&drainOnExit, "drain-on-exit", false, "on Ctrl-C/SIGTERM, first wait until nothing is pending (at most --drain-timeout)")
	f.DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "longest wait for --drain-on-exit")
	f.BoolVar(&debugFUSE, "debug-fuse", false, "log every FUSE request")
	f.BoolVar(&xattrs, "xattrs", false, "offer extended attributes through the mount (they are not synced; off by default because the kernel then checks them before every write)")
	ioURing.register(f)
	f.BoolVar(&noPass, "no-passthrough", false, "keep file I/O in s3sync even where the kernel could do it (FUSE passthrough)")
	f.DurationVar(&pull, "pull", 0, "also bring changes other writers make in the bucket into WORKDIR, looking every INTERVAL (--pull alone: 30s); a file with unsent changes here is never overwritten (see README: Two machines, one bucket)")
	f.Lookup("pull").NoOptDefVal = "30s"
	obs.register(f)
	f.BoolVar(&allowOther, "allow-other", false, "let other users use the mount, with WORKDIR's modes and owners enforced by the kernel (default_permissions); what they create is theirs when s3sync runs as root; not as root, /etc/fuse.conf needs user_allow_other")
	f.IntVar(&maxInodes, "max-cached-inodes", s3fs.DefaultMaxNodes, "how many files and directories the kernel may keep looked up through the mount (each costs s3sync about 600 bytes) before it is asked to forget those it learnt longest ago and has not opened since; they are looked up again when next used; 0: no limit")
	f.BoolVar(&adopt, "adopt", false, "take this WORKDIR and remote as the state's own when they are not the ones it was made for (a folder moved or restored, another bucket): WORKDIR is compared with the bucket and nothing is deleted")
	return c
}

type mounter struct {
	ioURing       ioURingMode
	g             *globalFlags
	sf            syncFlags
	settle        time.Duration
	stateDir      string
	drainOnExit   bool
	drainTimeout  time.Duration
	debug         bool
	noPassthrough bool
	xattrs        bool
	adopt         bool
	pull          time.Duration // 0: no pull
	obs           observeFlags
	allowOther    bool
	maxInodes     int // 0: no limit
}

// minMountProcs is the GOMAXPROCS a mount runs with at least. Every FUSE
// request is a blocking read(2) on /dev/fuse that returns to the Go
// scheduler needing a P; with as few Ps as cores (2 here) that hand-over
// measured about a third of a FUSE round trip (access(2) through the mount:
// 40 µs with 2, 30 µs with 8), and an untar makes six round trips per file.
const minMountProcs = 8

func (m *mounter) run(ctx context.Context, workArg, mountArg, remoteArg string) (err error) {
	lowerHeapLimit(mountMemoryLimit)
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < minMountProcs {
		runtime.GOMAXPROCS(minMountProcs)
	}
	log, closeLog, err := m.obs.logs.open()
	if err != nil {
		return err
	}
	defer func() { closeLog(err) }()
	if m.obs.logs.file == "" {
		// Without a log file to reopen, SIGHUP is the terminal hanging
		// up: stop as on SIGTERM, unmounting, rather than die with the
		// mount left stale.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGHUP)
		defer stop()
	}
	metrics, err := listenMetrics(m.obs.metricsAddr, log)
	if err != nil {
		return err
	}
	defer metrics.close()
	workdir, err := filepath.Abs(workArg)
	if err != nil {
		return usageErr("WORKDIR: %v", err)
	}
	mountpoint, err := filepath.Abs(mountArg)
	if err != nil {
		return usageErr("MOUNTPOINT: %v", err)
	}
	loc, err := remote.ParseURL(remoteArg)
	if err != nil {
		return usageErr("%v", err)
	}
	if st, err := os.Stat(workdir); err != nil || !st.IsDir() {
		return usageErr("WORKDIR %s is not a directory; create it first (it may be empty)", workdir)
	}
	spelled := workdir
	workdir = realPath(workdir)
	if workdir == mountpoint || strings.HasPrefix(mountpoint+"/", workdir+"/") || strings.HasPrefix(workdir+"/", mountpoint+"/") {
		return usageErr("MOUNTPOINT %s and WORKDIR %s must not contain each other; use a separate empty directory", mountpoint, workdir)
	}
	clearStaleMount(mountpoint, log)
	if st, err := os.Stat(mountpoint); err != nil || !st.IsDir() {
		return usageErr("MOUNTPOINT %s is not a directory; create an empty one first", mountpoint)
	}

	remoteURL := loc.String()
	if m.stateDir == "" {
		m.stateDir = mountStateDir(spelled, workdir, remoteURL, log)
	}
	if err := checkPrivate(m.stateDir); err != nil {
		return err
	}
	if m.pull > 0 {
		// The pull writes what the bucket holds into WORKDIR, only
		// through a root that no link can lead out of.
		r, err := confine.Open(workdir)
		if errors.Is(err, confine.ErrUnsupported) {
			return usageErr("--pull needs openat2 (Linux 5.6 or later) to write into WORKDIR safely; mount without --pull on this kernel")
		}
		if err != nil {
			return err
		}
		r.Close()
	}
	// WORKDIR = $HOME with the default state dir is the common case: the
	// state is then never mirrored, and a pull never writes there.
	for _, dir := range []string{stateRoot(), m.stateDir} {
		if rel, ok := inside(workdir, realPath(dir)); ok {
			m.sf.filters.Never(rel)
			log.Info("the state dir is inside WORKDIR; it is never mirrored nor pulled into", "dir", rel)
		}
	}
	st, err := state.Open(m.stateDir, state.Options{Journal: journal.Options{OnCommit: metrics.observeCommit(), MappedMax: journal.DefaultMappedMax}})
	if errors.Is(err, state.ErrLocked) {
		return fmt.Errorf("%s is already mounted to %s by another s3sync (state dir %s)", workdir, remoteURL, m.stateDir)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	// The start-up scan reads the whole cache: from a cold page cache,
	// one sequential read now, alongside the bucket checks, beats the
	// scan's random page faults by far.
	go func() {
		if err := st.Warm(); err != nil {
			log.Debug("could not read the state ahead", "err", err)
		}
	}()
	j := st.Journal()
	deletes := &deleteCounter{}
	// The client resolves the endpoint (flag, profile, environment) that
	// is part of the remote's identity; it makes no request yet.
	client, err := remote.New(ctx, m.sf.xfer.applyMount(remote.Config{Profile: m.g.profile, EndpointURL: m.g.endpoint, Region: m.g.region,
		MaxConns: max(64, m.sf.concurrency*2), MaxAttempts: 3, ObserveRequest: metrics.observeRequest(),
		ObserveTransfer: observeTransfers(metrics.observeTransfer(), deletes.observe)}))
	if err != nil {
		return err
	}
	if err := st.Claim(workdir, remoteURL, client.Endpoint(), m.adopt, log); err != nil {
		var other *state.MismatchError
		if errors.As(err, &other) {
			return &exitError{code: exitFailed, msg: other.Error()}
		}
		return err
	}
	info := stateInfo{Workdir: workdir, Mountpoint: mountpoint, Remote: remoteURL, PID: os.Getpid(), Started: time.Now()}
	if b, err := json.MarshalIndent(info, "", "  "); err == nil {
		os.WriteFile(filepath.Join(m.stateDir, infoFile), b, 0o600)
	}

	mir, err := mirror.Prepare(ctx, mirror.Config{
		Remote: client, State: st, Workdir: workdir, Loc: loc, Log: log,
		Delete: m.sf.delete, MaxDelete: m.sf.maxDelete, Filters: &m.sf.filters, StorageClass: m.sf.storageClass,
		Settle: m.settle, Concurrency: m.sf.concurrency, Pull: m.pull,
	})
	if err != nil {
		return err
	}

	// A file closed for good may be sent now (see DrainOptions.Writing).
	srv, err := s3fs.Mount(workdir, mountpoint, j, s3fs.Options{
		Debug: m.debug, DisablePassthrough: m.noPassthrough, DisableXAttrs: !m.xattrs,
		AllowOther:      m.allowOther,
		OnWritersClosed: mir.WriterClosed,
		IoUring:         m.ioURing.enabled(),
		MaxNodes:        cmp.Or(m.maxInodes, -1),
	})
	if err != nil {
		return fmt.Errorf("mount %s: %v (is /dev/fuse available, and fusermount3 installed when not root?)", mountpoint, err)
	}
	if err := m.ioURing.check(srv.IoUringErr(), log); err != nil {
		unmountNow(srv.Server, mountpoint, log)
		return err
	}
	log.Info("mounted", "workdir", workdir, "mountpoint", mountpoint, "remote", remoteURL, "state", m.stateDir)

	stopDeleteLog := make(chan struct{})
	deleteLogDone := make(chan struct{})
	go func() { deletes.logEvery(time.Minute, log, stopDeleteLog); close(deleteLogDone) }()
	mir.Start(mirror.Hooks{Writing: srv.Writing, Mount: srv})

	status := &statusServer{info: info, st: st, d: mir.Drainer(), stateDir: m.stateDir, fs: srv}
	stopStatus := status.serve(log)
	metrics.watch(status)
	notifyReady(log, mountpoint, remoteURL)

	unmounted := make(chan struct{})
	go func() { srv.Wait(); close(unmounted) }()
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case <-unmounted:
		log.Info("unmounted from outside; stopping")
	}
	notifyStopping(log)
	if m.drainOnExit {
		mir.WaitDrained(m.drainTimeout, srv.OpenForWriting)
	}
	unmount(srv.Server, mountpoint, unmounted, log)
	mir.Stop()
	close(stopDeleteLog)
	<-deleteLogDone
	stopStatus()
	metrics.close()
	if err := j.Close(); err != nil {
		log.Error("journal", "err", err)
	}
	s, _ := j.Stats()
	if s.Pending > 0 || s.Failed > 0 {
		log.Info("stopped with changes not yet in the bucket; they are sent at the next mount", "pending", s.Pending, "failed", s.Failed)
	}
	return nil
}
