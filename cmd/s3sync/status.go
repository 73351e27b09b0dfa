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

	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/state"
)

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
			var reps []mirror.Report
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
func statusOf(ctx context.Context, dir string, retry bool) (mirror.Report, error) {
	var info stateInfo
	b, err := os.ReadFile(filepath.Join(dir, infoFile))
	if err != nil {
		return mirror.Report{}, fmt.Errorf("%s is not an s3sync state dir: %w", dir, err)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return mirror.Report{}, fmt.Errorf("%s: %w", filepath.Join(dir, infoFile), err)
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
		var rep mirror.Report
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
		return mirror.Report{}, fmt.Errorf("the mount of %s holds its state but does not answer on %s; is it stuck?", info.Workdir, sock)
	}
	if err != nil {
		return mirror.Report{}, err
	}
	defer st.Close()
	if retry {
		if _, err := st.Journal().RetryFailed(); err != nil {
			return mirror.Report{}, err
		}
	}
	rep, err := mirror.BuildReport(info.mount(), st, false, mirror.State{})
	rep.StateDir = dir
	if err == nil {
		err = mirror.AddConflicts(&rep, st)
	}
	return rep, err
}

func printReport(r mirror.Report) {
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
