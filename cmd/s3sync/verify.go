package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/s3sync/s3sync/state"
	"github.com/s3sync/s3sync/syncer"
)

func init() {
	extraCommands = append(extraCommands, newVerifyCmd)
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	var (
		asJSON      bool
		stateDir    string
		noFollow    bool
		links       bool
		owner       bool
		concurrency int
		filters     syncer.Filters
		patterns    []string
		xf          transferFlags
	)
	c := &cobra.Command{
		Use:   "verify [--json] SRC DST",
		Short: "Compare SRC and DST by size, stored mtime and content; exit 1 on any difference",
		Long: `Compare SRC and DST, each a local directory or s3://BUCKET[/PREFIX], path by
path: size, stored mtime (a file's mtime; an object's x-amz-meta-mtime, to the
nanosecond as far as both sides keep it) and content (a file's MD5 against a
single-part ETag, the CRC64NVME the store keeps otherwise). An object whose
content no checksum can tell is reported "not checkable" and counted, but is
not a difference; one without x-amz-meta-mtime is compared without mtime.
Where an object of the same size carries x-amz-meta-mode, the permission
bits (07777) must equal the local file's (S3 to S3: both objects'); a
difference only there is "metadata differs" (--owner: uid and gid too).

Prints one line per difference on stdout and a summary on stderr; with
--json, one JSON object per line on stdout, the last one the summary.

Local files are read once per run; their checksums are kept in the state
database of the mount of that directory (or --state-dir) when there is one,
valid while the file's size, mtime, ctime and inode stay the same.

Exit codes: 0 identical; 1 any difference, or a path that could not be
compared; 2 the command line was wrong.`,
		Args: argsUsage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if concurrency < 1 || concurrency > 1000 {
				return usageErr("--concurrency %d is out of range; use 1 to 1000", concurrency)
			}
			if err := xf.validate(); err != nil {
				return err
			}
			g.xfer = &xf
			src, dst, err := parseEndpoints(args)
			if err != nil {
				return err
			}
			for _, e := range []struct {
				name string
				ep   syncer.Endpoint
			}{{"SRC", src}, {"DST", dst}} {
				if !e.ep.IsS3 {
					if st, err := os.Stat(e.ep.Local); err != nil || !st.IsDir() {
						return usageErr("%s %s is not a directory", e.name, e.ep.Local)
					}
				}
			}
			opts := syncer.VerifyOptions{Filters: &filters, NoFollow: noFollow, Links: links, Owner: owner, Concurrency: concurrency}
			return runVerify(cmd.Context(), g, src, dst, opts, stateDir, asJSON)
		},
	}
	f := c.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON lines: one object per difference, then a summary object")
	f.StringVar(&stateDir, "state-dir", "", "keep local checksums in this state dir (default: the mount's, if the local directory was mounted)")
	f.BoolVar(&noFollow, "no-follow-symlinks", false, "skip symlinks instead of following them")
	f.BoolVar(&links, "links", false, "compare symlinks, never followed, with NAME.rclonelink objects (how a mount stores them)")
	f.BoolVar(&owner, "owner", false, "also compare uid and gid (x-amz-meta-uid, -gid) with the local file's owner")
	f.IntVar(&concurrency, "concurrency", syncer.DefaultConcurrency, "paths checked at once (HEADs, file reads)")
	registerFilters(f, &filters, &patterns)
	xf.registerCustomerKey(f)
	return c
}

func runVerify(ctx context.Context, g *globalFlags, src, dst syncer.Endpoint, opts syncer.VerifyOptions, stateDir string, asJSON bool) error {
	var r syncer.Remote
	if src.IsS3 || dst.IsS3 {
		client, err := g.clientFor(ctx, opts.Concurrency, src, dst)
		if err != nil {
			return err
		}
		r = client
	}
	sums, closeSums := openSums(stateDir, src, dst)
	defer closeSums()
	if sums != nil {
		opts.Sums = sums
	}
	out := &verifyPrinter{out: os.Stdout, err: os.Stderr, json: asJSON}
	opts.Report = out.finding
	sum, err := syncer.Verify(ctx, r, src, dst, opts)
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	if err != nil {
		return err
	}
	out.summary(sum)
	if !sum.Identical() {
		return &exitError{code: exitFailed}
	}
	return nil
}

// openSums opens the checksum cache for the local side of a run: in
// stateDir when given, else in the default state dir of a mount of that
// directory to the other side, if there is one. It returns nil when there
// is none or the database is in use (a running mount holds it), and says
// so on stderr.
func openSums(stateDir string, src, dst syncer.Endpoint) (*state.Sums, func()) {
	nothing := func() {}
	local, other := src, dst
	if local.IsS3 {
		local, other = dst, src
	}
	if local.IsS3 {
		return nil, nothing // S3 to S3: nothing to hash
	}
	if stateDir == "" {
		if !other.IsS3 {
			return nil, nothing
		}
		abs, err := filepath.Abs(local.Local)
		if err != nil {
			return nil, nothing
		}
		stateDir = defaultStateDir(abs, other.S3.String())
		if _, err := os.Stat(filepath.Join(stateDir, state.DBName)); err != nil {
			return nil, nothing
		}
	}
	sums, err := state.OpenSums(stateDir)
	if errors.Is(err, state.ErrLocked) {
		fmt.Fprintf(os.Stderr, "note: the state in %s is in use (a running mount?); reading every file, checksums not cached\n", stateDir)
		return nil, nothing
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "note: checksums not cached: %v\n", err)
		return nil, nothing
	}
	return sums, func() {
		if err := sums.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "note: checksums not cached: %v\n", err)
		}
	}
}

// verifyPrinter renders findings as lines (differences on stdout, errors and
// warnings on stderr) or as JSON lines on stdout.
type verifyPrinter struct {
	out, err io.Writer
	json     bool
	enc      *json.Encoder
}

func (p *verifyPrinter) encode(v any) {
	if p.enc == nil {
		p.enc = json.NewEncoder(p.out)
		p.enc.SetEscapeHTML(false)
	}
	p.enc.Encode(v)
}

// jsonFinding is one line of --json output. Kind is one of "differs",
// "metadata_differs", "only_src", "only_dst", "not_checkable", "error", "skipped", and
// "summary" for the last line (jsonSummary).
type jsonFinding struct {
	Kind    string   `json:"kind"`
	Path    string   `json:"path,omitempty"`
	Src     string   `json:"src,omitempty"`
	Dst     string   `json:"dst,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Error   string   `json:"error,omitempty"`
}

type jsonSummary struct {
	Kind         string `json:"kind"` // "summary"
	Identical    bool   `json:"identical"`
	Checked      int64  `json:"checked"`
	Differ       int64  `json:"differ"`
	MetaDiffer   int64  `json:"metadata_differ"`
	OnlySrc      int64  `json:"only_src"`
	OnlyDst      int64  `json:"only_dst"`
	NotCheckable int64  `json:"not_checkable"`
	Errors       int64  `json:"errors"`
	Skipped      int64  `json:"skipped"`
	NoMtime      int64  `json:"no_mtime"`
	Hashed       int64  `json:"hashed"`
	HashCached   int64  `json:"hash_cached"`
}

// finding is Verify's Report callback; Verify calls it from one goroutine.
func (p *verifyPrinter) finding(f syncer.Finding) {
	if p.json {
		jf := jsonFinding{Kind: string(f.Kind), Path: f.Rel, Src: f.Src, Dst: f.Dst, Reasons: f.Reasons}
		if f.Err != nil {
			jf.Error = oneLine(f.Err)
		}
		p.encode(jf)
		return
	}
	switch f.Kind {
	case syncer.FindDiffers:
		fmt.Fprintf(p.out, "differs: %s %s: %s\n", shown(f.Src), shown(f.Dst), strings.Join(f.Reasons, "; "))
	case syncer.FindMetaDiffers:
		fmt.Fprintf(p.out, "metadata differs: %s %s: %s\n", shown(f.Src), shown(f.Dst), strings.Join(f.Reasons, "; "))
	case syncer.FindOnlySrc:
		fmt.Fprintf(p.out, "only in SRC: %s\n", shown(f.Src))
	case syncer.FindOnlyDst:
		fmt.Fprintf(p.out, "only in DST: %s\n", shown(f.Dst))
	case syncer.FindNotCheckable:
		fmt.Fprintf(p.out, "not checkable: %s %s: %s\n", shown(f.Src), shown(f.Dst), strings.Join(f.Reasons, "; "))
	case syncer.FindError:
		fmt.Fprintf(p.err, "error: %s %s: %s\n", shown(f.Src), shown(f.Dst), oneLine(f.Err))
	case syncer.FindSkipped:
		fmt.Fprintf(p.err, "warning: skipping %s: %s\n", shown(f.Src+f.Dst), oneLine(f.Err))
	}
}

func (p *verifyPrinter) summary(s syncer.VerifySummary) {
	if p.json {
		p.encode(jsonSummary{Kind: "summary", Identical: s.Identical(),
			Checked: s.Checked, Differ: s.Differ, MetaDiffer: s.MetaDiffer, OnlySrc: s.OnlySrc, OnlyDst: s.OnlyDst,
			NotCheckable: s.NotCheckable, Errors: s.Errors, Skipped: s.Skipped, NoMtime: s.NoMtime,
			Hashed: s.Hashed, HashCached: s.HashCached})
		return
	}
	line := fmt.Sprintf("%d checked, %d differ, %d only in SRC, %d only in DST, %d not checkable",
		s.Checked, s.Differ, s.OnlySrc, s.OnlyDst, s.NotCheckable)
	if s.MetaDiffer > 0 {
		line += fmt.Sprintf(", %d differ only in mode or owner", s.MetaDiffer)
	}
	if s.Errors > 0 {
		line += fmt.Sprintf(", %d could not be compared", s.Errors)
	}
	if s.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped", s.Skipped)
	}
	if s.NoMtime > 0 {
		line += fmt.Sprintf("; %s without x-amz-meta-mtime, compared without mtime", humanCount(s.NoMtime, "object", "objects"))
	}
	verdict := "identical"
	if !s.Identical() {
		verdict = "DIFFERENT"
	}
	fmt.Fprintf(p.err, "verify: %s: %s\n", verdict, line)
}
