package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/s3sync/s3sync/syncer"
)

func newReconcileCmd(g *globalFlags) *cobra.Command {
	var (
		sf           syncFlags
		of           outputFlags
		dry          bool
		sizeOnly     bool
		exact        bool
		noFollow     bool
		follow       bool
		forceGlacier bool
		checksum     bool
		stateDir     string
	)
	c := &cobra.Command{
		Use:     "reconcile [flags] SRC DST",
		Aliases: []string{"sync"},
		Short:   "Sync SRC to DST once, by the rules of 'aws s3 sync' (local→s3, s3→local, s3→s3)",
		Long: `Sync SRC to DST once, by the rules of 'aws s3 sync'. SRC and DST are each a
local directory or s3://BUCKET[/PREFIX]; at least one is an S3 URL.

A file is transferred when it is missing at DST, when the sizes differ, or when
SRC is newer (for downloads: when the local file is newer than the object, as
the AWS CLI does). Files only at DST are deleted only with --delete; excluded
paths are never deleted. A run that would delete more than --max-delete allows
(default: over half of DST, if over 20 paths) deletes nothing, says so, and
exits 2.

With --checksum, content decides instead of times (rclone's --checksum): a
same-sized file is transferred when its MD5 differs from a single-part ETag,
or its CRC64NVME from the one the store keeps (one HEAD, for multipart
objects), or when neither is known; it is skipped when the content agrees,
however the times differ. Local checksums are kept in the mount's state
database of that directory (or --state-dir) when there is one.`,
		Args: argsUsage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sf.validate(); err != nil {
				return err
			}
			if sizeOnly && exact {
				return usageErr("--size-only and --exact-timestamps cannot be used together")
			}
			if checksum && (sizeOnly || exact) {
				return usageErr("--checksum cannot be used with --size-only or --exact-timestamps")
			}
			if noFollow && follow {
				return usageErr("--follow-symlinks and --no-follow-symlinks cannot be used together")
			}
			src, dst, err := parseEndpoints(args)
			if err != nil {
				return err
			}
			if !src.IsS3 && !dst.IsS3 {
				return usageErr("one of SRC and DST must be an s3:// URL")
			}
			if !src.IsS3 {
				if st, err := os.Stat(src.Local); err != nil || !st.IsDir() {
					return usageErr("SRC %s is not a directory: give the folder to upload (reconcile syncs folders, as aws s3 sync does)", src.Local)
				}
			}
			opts := syncer.Options{
				Delete: sf.delete, DryRun: dry,
				Compare:      syncer.Compare{SizeOnly: sizeOnly, ExactTimestamps: exact, Checksum: checksum},
				Filters:      &sf.filters,
				StorageClass: sf.storageClass, NoFollow: noFollow, ForceGlacier: forceGlacier,
				Concurrency: sf.concurrency, MaxDelete: sf.maxDelete,
			}
			if checksum {
				sums, closeSums := openSums(stateDir, src, dst)
				defer closeSums()
				if sums != nil {
					opts.Sums = sums
				}
			}
			return runReconcile(cmd.Context(), g, src, dst, opts, of)
		},
	}
	f := c.Flags()
	sf.register(f)
	of.register(f)
	f.BoolVar(&dry, "dryrun", false, "show what would be done, change nothing")
	f.BoolVar(&sizeOnly, "size-only", false, "compare sizes only, not times")
	f.BoolVar(&exact, "exact-timestamps", false, "when downloading, transfer same-sized files whose times differ at all")
	f.BoolVar(&checksum, "checksum", false, "compare same-sized files by content (MD5, CRC64NVME), not by time")
	f.StringVar(&stateDir, "state-dir", "", "with --checksum, keep local checksums in this state dir (default: the mount's, if the local directory was mounted)")
	f.BoolVar(&follow, "follow-symlinks", false, "follow symlinks (the default)")
	f.BoolVar(&noFollow, "no-follow-symlinks", false, "skip symlinks instead of following them")
	f.BoolVar(&forceGlacier, "force-glacier-transfer", false, "transfer GLACIER and DEEP_ARCHIVE objects instead of skipping them")
	return c
}

func runReconcile(ctx context.Context, g *globalFlags, src, dst syncer.Endpoint, opts syncer.Options, of outputFlags) error {
	client, err := g.clientFor(ctx, opts.Concurrency, src, dst)
	if err != nil {
		return err
	}
	p := newPrinter(of)
	opts.Report = p.event
	sum, err := syncer.Reconcile(ctx, client, src, dst, opts)
	p.planDone()
	p.finish(sum, opts.DryRun)
	var refused *syncer.DeleteRefusal
	switch {
	case errors.As(err, &refused):
		return refusedErr(refused, sum)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted; run the same command again to finish")
	case err != nil:
		return err
	case sum.Failed > 0:
		return fmt.Errorf("%s failed; run the same command again to retry", humanCount(sum.Failed, "transfer", "transfers"))
	case sum.Skipped > 0:
		return &exitError{code: exitSkipped, msg: fmt.Sprintf("%s skipped (see the warnings above)", humanCount(sum.Skipped, "file was", "files were"))}
	}
	return nil
}
