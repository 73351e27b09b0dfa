package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/s3sync/s3sync/journal"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

// report is `s3sync status --json`'s output, one per state dir.
type report struct {
	Workdir      string `json:"workdir"`
	Mountpoint   string `json:"mountpoint,omitempty"`
	Remote       string `json:"remote"`
	StateDir     string `json:"state_dir"`
	Mounted      bool   `json:"mounted"`
	PID          int    `json:"pid,omitempty"`
	Pending      int    `json:"pending"`
	PendingBytes int64  `json:"pending_bytes"`
	// PendingBytesPartial: only the first pendingStatLimit pending files
	// were measured, so PendingBytes is a lower bound.
	PendingBytesPartial bool          `json:"pending_bytes_partial,omitempty"`
	OldestPending       *time.Time    `json:"oldest_pending,omitempty"`
	OldestAgeSeconds    float64       `json:"oldest_pending_age_seconds"`
	InFlight            int           `json:"in_flight"`
	Failed              []failedEntry `json:"failed"`
	Retrying            []failedEntry `json:"retrying"`
	// KeepsChanging: files changed during every attempt to send them, on
	// a filesystem that cannot snapshot them; unsynced since Since.
	KeepsChanging []failedEntry `json:"keeps_changing"`
	LastUpload    *time.Time    `json:"last_upload,omitempty"`
	Offline       bool          `json:"offline"`
	OfflineError  string        `json:"offline_error,omitempty"`
	// Paused says why the whole drain waits (unreachable, credentials,
	// clock, access denied everywhere); "" when it does not.
	Paused      string `json:"paused,omitempty"`
	PausedError string `json:"paused_error,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	// Versioning: whether the bucket keeps old versions ("off",
	// "enabled", "suspended", "unknown"), as learned at mount start-up.
	Versioning remote.Versioning `json:"versioning"`
	// RefusedDeletions: files the last mount's start-up scan found gone
	// from WORKDIR and did not delete from the bucket (--max-delete).
	RefusedDeletions *state.ScanRefusal `json:"refused_deletions,omitempty"`
	// Conflicts: paths another writer changed in the bucket since this
	// side last saw them (see conflicts.go); Conditions: which
	// conditional requests the store honours, as probed at mount start.
	Conflicts []conflictEntry `json:"conflicts"`
	// Skipped: FIFOs, sockets and device nodes in WORKDIR, which S3
	// cannot hold: not stored, and not failures (the first 100, and how
	// many there are).
	Skipped      []skippedEntry     `json:"skipped"`
	SkippedCount int                `json:"skipped_count"`
	Conditions   *remote.Conditions `json:"conditional_requests,omitempty"`
	// CachedInodes: files and directories the kernel holds looked up
	// through the mount (see --max-cached-inodes); mounted only.
	CachedInodes int `json:"cached_inodes,omitempty"`
}

type skippedEntry struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
}

type failedEntry struct {
	Path     string    `json:"path"`
	Op       string    `json:"op"`
	Error    string    `json:"error"`
	Since    time.Time `json:"since"`
	Attempts int       `json:"attempts"`
}

// buildReport reads the journal; live is the running mount's drain state.
// pendingStatLimit bounds the files status stats to size the pending
// bytes: scripts poll status while a mount drains a large burst, and a stat
// per pending file on every poll would take CPU from the drain itself.
const pendingStatLimit = 1000

func buildReport(info stateInfo, st *state.State, mounted bool, live mirror.State) (report, error) {
	j := st.Journal()
	rep := report{Workdir: info.Workdir, Mountpoint: info.Mountpoint, Remote: info.Remote, Mounted: mounted,
		Offline: live.Offline, OfflineError: live.OfflineErr, Paused: live.Paused, PausedError: live.PausedErr, LastError: live.LastError, InFlight: live.InFlight,
		Failed: []failedEntry{}, Retrying: []failedEntry{}, KeepsChanging: []failedEntry{}}
	rep.Versioning = st.Versioning()
	rep.RefusedDeletions = st.ScanRefusal()
	if mounted {
		rep.PID = info.PID
		// Changes recorded a moment ago may still be queued for the next
		// group commit; count them too.
		if err := j.Sync(context.Background()); err != nil {
			return rep, err
		}
	}
	var oldest time.Time
	statted := 0
	// In path order, not the queue's: a million pending took seconds to
	// walk in queue order (a lookup per record), and status is polled.
	err := j.EachPending(func(r journal.Record) bool {
		rep.Pending++
		switch {
		case r.Attempts > 0 && r.Err == syncer.ErrKeepsChanging.Error():
			if len(rep.KeepsChanging) < 100 {
				rep.KeepsChanging = append(rep.KeepsChanging, failedEntry{Path: r.Path, Op: r.Op.String(), Error: r.Err, Since: r.First, Attempts: r.Attempts})
			}
		case r.Attempts > 0 && len(rep.Retrying) < 100:
			rep.Retrying = append(rep.Retrying, failedEntry{Path: r.Path, Op: r.Op.String(), Error: r.Err, Since: r.ErrTime, Attempts: r.Attempts})
		}
		if oldest.IsZero() || r.First.Before(oldest) {
			oldest = r.First
		}
		if r.Op != journal.OpRemoved && !r.IsDir {
			if statted == pendingStatLimit {
				rep.PendingBytesPartial = true
			} else {
				statted++
				if st, err := os.Stat(filepath.Join(info.Workdir, filepath.FromSlash(r.Path))); err == nil && st.Mode().IsRegular() {
					rep.PendingBytes += st.Size()
				}
			}
		}
		return true
	})
	if err != nil {
		return rep, err
	}
	if !oldest.IsZero() {
		rep.OldestPending = &oldest
		rep.OldestAgeSeconds = time.Since(oldest).Seconds()
	}
	failed, err := j.Failed()
	if err != nil {
		return rep, err
	}
	for _, r := range failed {
		rep.Failed = append(rep.Failed, failedEntry{Path: r.Path, Op: r.Op.String(), Error: r.Err, Since: r.ErrTime, Attempts: r.Attempts})
	}
	last := live.LastUpload
	if last.IsZero() {
		if b, err := j.Meta(mirror.MetaLastUpload); err == nil && len(b) > 0 {
			last, _ = time.Parse(time.RFC3339Nano, string(b))
		}
	}
	if !last.IsZero() {
		rep.LastUpload = &last
	}
	return rep, nil
}

func newStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON, retry bool
	var stateDir string
	c := &cobra.Command{
		Use:   "status [--json] WORKDIR",
		Short: "Show what is pending, failed and last synced for a workdir, mounted or not",
		Args:  argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			workdir, err := filepath.Abs(args[0])
			if err != nil {
				return usageErr("WORKDIR: %v", err)
			}
			dirs := []string{stateDir}
			if stateDir == "" {
				dirs = findStateDirs(workdir)
				if len(dirs) == 0 {
					return fmt.Errorf("%s has never been mounted (no state under %s); give --state-dir if it used another", workdir, stateRoot())
				}
			}
			var reps []report
			for _, dir := range dirs {
				rep, err := statusOf(cmd.Context(), dir, retry)
				if err != nil {
					return err
				}
				reps = append(reps, rep)
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if len(reps) == 1 {
					return enc.Encode(reps[0])
				}
				return enc.Encode(reps)
			}
			for i, rep := range reps {
				if i > 0 {
					fmt.Println()
				}
				printReport(rep)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&retry, "retry", false, "move failed changes back to pending, to be tried again now")
	c.Flags().StringVar(&stateDir, "state-dir", "", "the mount's --state-dir, if it was given one")
	return c
}

// findStateDirs returns the state dirs whose info names workdir, by any
// spelling: mounts record its real path (older ones the path given).
func findStateDirs(workdir string) []string {
	ents, err := os.ReadDir(stateRoot())
	if err != nil {
		return nil
	}
	real := realPath(workdir)
	var out []string
	for _, e := range ents {
		dir := filepath.Join(stateRoot(), e.Name())
		var info stateInfo
		if b, err := os.ReadFile(filepath.Join(dir, infoFile)); err == nil && json.Unmarshal(b, &info) == nil &&
			(info.Workdir == workdir || info.Workdir == real || realPath(info.Workdir) == real) {
			out = append(out, dir)
		}
	}
	sort.Strings(out)
	return out
}

// statusOf asks the running mount over its socket, else reads the state
// database directly.
func statusOf(ctx context.Context, dir string, retry bool) (report, error) {
	var info stateInfo
	b, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return report{}, fmt.Errorf("%s is not an s3sync state dir: %w", dir, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return report{}, fmt.Errorf("%s: %w", filepath.Join(dir, infoFile), err)
	}
	sock := filepath.Join(dir, socketFile)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	if retry {
		if resp, err := hc.Post("http://mount/retry", "text/plain", nil); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	resp, err := hc.Get("http://mount/status")
	if err == nil {
		defer resp.Body.Close()
		var rep report
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			return rep, fmt.Errorf("the mount answered: %s", strings.TrimSpace(string(msg)))
		}
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			return rep, err
		}
		rep.StateDir = dir
		return rep, nil
	}
	st, err := state.Open(dir, state.Options{})
	if errors.Is(err, state.ErrLocked) {
		return report{}, fmt.Errorf("the mount of %s holds its state but does not answer on %s; is it stuck?", info.Workdir, sock)
	}
	if err != nil {
		return report{}, err
	}
	defer st.Close()
	if retry {
		if _, err := st.Journal().RetryFailed(); err != nil {
			return report{}, err
		}
	}
	rep, err := buildReport(info, st, false, mirror.State{})
	rep.StateDir = dir
	if err == nil {
		err = addConflicts(&rep, st)
	}
	return rep, err
}

func printReport(r report) {
	state := "not mounted"
	if r.Mounted {
		state = fmt.Sprintf("mounted at %s (pid %d)", r.Mountpoint, r.PID)
	}
	fmt.Printf("%s → %s\n", r.Workdir, r.Remote)
	fmt.Printf("  state:       %s\n", state)
	if r.Offline {
		fmt.Printf("  endpoint:    UNREACHABLE, changes are kept and sent when it returns (%s)\n", r.OfflineError)
	} else if r.Paused != "" {
		fmt.Printf("  PAUSED:      %s (%s)\n", r.Paused, r.PausedError)
	}
	if r.Pending == 0 {
		fmt.Printf("  pending:     nothing, the bucket is up to date\n")
	} else {
		size := humanize.IBytes(uint64(r.PendingBytes))
		if r.PendingBytesPartial {
			size = "over " + size
		}
		fmt.Printf("  pending:     %s, %s; oldest change %s ago\n", humanCount(int64(r.Pending), "change", "changes"),
			size, time.Duration(r.OldestAgeSeconds*float64(time.Second)).Round(time.Second))
	}
	if r.RefusedDeletions != nil {
		fmt.Printf("  not deleted: %s\n", scanRefusalLine(r.RefusedDeletions))
	}
	if r.LastUpload != nil {
		fmt.Printf("  last upload: %s (%s)\n", r.LastUpload.Local().Format("2006-01-02 15:04:05"), humanize.Time(*r.LastUpload))
	} else {
		fmt.Printf("  last upload: none yet\n")
	}
	fmt.Printf("  versioning:  %s\n", versioningLine(r.Versioning, r.Remote))
	printConflicts(r)
	if len(r.Retrying) > 0 {
		fmt.Printf("  retrying:    %d (temporary errors, tried again with backoff)\n", len(r.Retrying))
		for i, f := range r.Retrying {
			if i == 5 {
				fmt.Printf("    …\n")
				break
			}
			fmt.Printf("    %s: %s (%d attempts)\n", shown(f.Path), escapeControl(f.Error), f.Attempts)
		}
	}
	if len(r.KeepsChanging) > 0 {
		fmt.Printf("  keeps changing: %d (written to during every upload; sent once left alone for a moment)\n", len(r.KeepsChanging))
		for i, f := range r.KeepsChanging {
			if i == 5 {
				fmt.Printf("    …\n")
				break
			}
			fmt.Printf("    %s: not in the bucket as it is now for %s\n", shown(f.Path), time.Since(f.Since).Round(time.Second))
		}
	}
	if r.SkippedCount > 0 {
		fmt.Printf("  skipped:     %d (FIFOs, sockets, devices: S3 holds files, links and folders only)\n", r.SkippedCount)
		for i, s := range r.Skipped {
			if i == 5 {
				fmt.Printf("    …\n")
				break
			}
			fmt.Printf("    %s: %s\n", shown(s.Path), s.Kind)
		}
	}
	if len(r.Failed) == 0 {
		fmt.Printf("  failed:      none\n")
		return
	}
	fmt.Printf("  failed:      %d (retried at the next mount, or now with `s3sync status --retry`)\n", len(r.Failed))
	for _, f := range r.Failed {
		fmt.Printf("    %s: %s\n", shown(f.Path), escapeControl(f.Error))
	}
}
