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
		ifUnchanged  bool
		sizeOnly     bool
		exact        bool
		noFollow     bool
		follow       bool
		links        bool
		forceGlacier bool
		checksum     bool
		stateDir     string
		metadata     bool
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

Symlinks are followed on upload, as aws s3 sync does (--no-follow-symlinks
skips them). With --links they are stored as links instead, in rclone's
format (an object NAME.rclonelink whose body is the link's target), and on
download such objects become symlinks again; without --links they download
as plain files. A download never writes through a symlink in DST that leads
outside DST, nor lists (and so --delete never deletes) files below one.

With --checksum, content decides instead of times (rclone's --checksum): a
same-sized file is transferred when its MD5 differs from a single-part ETag,
or its CRC64NVME from the one the store keeps (one HEAD, for multipart
objects), or when neither is known; it is skipped when the content agrees,
however the times differ. Local checksums are kept in the mount's state
database of that directory (or --state-dir) when there is one.

Uploads store each file's mode, uid and gid with its mtime, as rclone's
--metadata does; downloads restore the permission bits (0777). With
--metadata they also restore setuid, setgid and sticky bits and, as root,
the owner: use it only for a bucket whose writers you trust.`,
		Args: argsUsage(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := sf.validate(); err != nil {
				return err
			}
			g.xfer = &sf.xfer
			if sizeOnly && exact {
				return usageErr("--size-only and --exact-timestamps cannot be used together")
			}
			if checksum && (sizeOnly || exact) {
				return usageErr("--checksum cannot be used with --size-only or --exact-timestamps")
			}
			if noFollow && follow {
				return usageErr("--follow-symlinks and --no-follow-symlinks cannot be used together")
			}
			if links && follow {
				return usageErr("--links stores symlinks as links and never follows them; drop --follow-symlinks")
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
				StorageClass: sf.storageClass, NoFollow: noFollow, Links: links, ForceGlacier: forceGlacier,
				Concurrency: sf.concurrency, MaxDelete: sf.maxDelete,
				Restore: restoreFor(metadata, dst), IfUnchanged: ifUnchanged,
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
	sf.xfer.registerCopySource(f)
	of.register(f)
	f.BoolVar(&dry, "dryrun", false, "show what would be done, change nothing")
	f.BoolVar(&ifUnchanged, "if-unchanged", false, "write and delete in the bucket only where the key is still as this run listed it (conditional requests); a key another writer changed meanwhile is reported as a conflict and left alone")
	f.BoolVar(&sizeOnly, "size-only", false, "compare sizes only, not times")
	f.BoolVar(&exact, "exact-timestamps", false, "when downloading, transfer same-sized files whose times differ at all")
	f.BoolVar(&checksum, "checksum", false, "compare same-sized files by content (MD5, CRC64NVME), not by time")
	f.StringVar(&stateDir, "state-dir", "", "with --checksum, keep local checksums in this state dir (default: the mount's, if the local directory was mounted)")
	f.BoolVar(&follow, "follow-symlinks", false, "follow symlinks (the default)")
	f.BoolVar(&noFollow, "no-follow-symlinks", false, "skip symlinks instead of following them")
	f.BoolVar(&links, "links", false, "store symlinks as rclone's NAME.rclonelink objects (never followed), and download such objects as symlinks")
	f.BoolVar(&metadata, "metadata", false, "downloads also restore setuid/setgid/sticky bits and, as root, the owner (uid/gid) from the objects' metadata")
	f.BoolVar(&forceGlacier, "force-glacier-transfer", false, "transfer GLACIER and DEEP_ARCHIVE objects instead of skipping them")
	return c
}

// restoreFor is what downloads restore with --metadata. Owners need root;
// anyone else is told once, rather than failing every file.
func restoreFor(metadata bool, dst syncer.Endpoint) syncer.Restore {
	if !metadata || dst.IsS3 {
		return syncer.Restore{}
	}
	root := os.Geteuid() == 0
	if !root {
		fmt.Fprintln(os.Stderr, "warning: --metadata: owners (uid/gid) are restored only when running as root; files will be owned by you")
	}
	return syncer.Restore{Special: true, Owner: root}
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
