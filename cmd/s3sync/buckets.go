package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/s3sync/s3sync/remote"
)

func newLsCmd(g *globalFlags) *cobra.Command {
	var recursive, human, summarize bool
	c := &cobra.Command{
		Use:   "ls [flags] [s3://BUCKET[/PREFIX]]",
		Short: "List buckets, or the objects and folders under a prefix",
		Args:  argsUsage(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			client, err := g.client(ctx, 0)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				buckets, err := client.ListBuckets(ctx)
				if err != nil {
					return err
				}
				for _, b := range buckets {
					fmt.Printf("%s %s\n", b.Created, b.Name)
				}
				return nil
			}
			if !remote.IsS3URL(args[0]) {
				return usageErr("%q is not an S3 URL: write s3://BUCKET[/PREFIX]", args[0])
			}
			bucket, prefix, _ := strings.Cut(strings.TrimPrefix(args[0], "s3://"), "/")
			if bucket == "" {
				return usageErr("%q names no bucket", args[0])
			}
			var count, total int64
			size := func(n int64) string {
				if human {
					return humanSize(n)
				}
				return fmt.Sprint(n)
			}
			obj := func(o remote.Object) error {
				count++
				total += o.Size
				name := o.Key
				if !recursive {
					name = strings.TrimPrefix(o.Key, prefix[:strings.LastIndex(prefix, "/")+1])
				}
				fmt.Printf("%s %10s %s\n", o.LastModified.Local().Format("2006-01-02 15:04:05"), size(o.Size), shown(name))
				return nil
			}
			if recursive {
				err = client.List(ctx, bucket, prefix, obj)
			} else {
				err = client.ListDir(ctx, bucket, prefix, obj, func(p string) error {
					fmt.Printf("%30s %s\n", "PRE", shown(strings.TrimPrefix(p, prefix[:strings.LastIndex(prefix, "/")+1])))
					return nil
				})
			}
			if err != nil {
				return err
			}
			if summarize {
				fmt.Printf("\nTotal Objects: %d\n   Total Size: %s\n", count, size(total))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&recursive, "recursive", false, "list every object below the prefix")
	c.Flags().BoolVar(&human, "human-readable", false, "show sizes as KiB, MiB, GiB")
	c.Flags().BoolVar(&summarize, "summarize", false, "end with the number of objects and their total size")
	return c
}

func bucketArg(arg string) (string, error) {
	loc, err := remote.ParseURL(arg)
	if err != nil {
		return "", usageErr("%v", err)
	}
	if loc.Prefix != "" {
		return "", usageErr("%q: give a bucket only, s3://BUCKET", arg)
	}
	return loc.Bucket, nil
}

func newMbCmd(g *globalFlags) *cobra.Command {
	var versioning bool
	c := &cobra.Command{
		Use:   "mb s3://BUCKET [--region R] [--versioning]",
		Short: "Make a private bucket, with public access blocked and incomplete uploads aborted after 7 days",
		Args:  argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := bucketArg(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			client, err := g.client(ctx, 0)
			if err != nil {
				return err
			}
			pubErr, err := client.MakeBucket(ctx, bucket, g.region)
			// With --versioning, mb makes a bucket one already has
			// backup-grade; without, it fails there as aws s3 mb does.
			existed := versioning && errors.Is(err, remote.ErrBucketYours)
			if err != nil && !existed {
				return fmt.Errorf("make_bucket failed: %w", err)
			}
			if existed {
				fmt.Printf("make_bucket: %s already exists and is yours; turning on versioning and adding the lifecycle rule\n", bucket)
			} else {
				fmt.Printf("make_bucket: %s\n", bucket)
			}
			if pubErr != nil {
				if errors.Is(pubErr, remote.ErrNotImplemented) {
					fmt.Fprintf(os.Stderr, "warning: this store does not support public access blocks; %s is private by its ACL only\n", bucket)
				} else {
					fmt.Fprintf(os.Stderr, "warning: could not block public access on %s: %v\n", bucket, pubErr)
				}
			}
			var verErr error
			if versioning {
				verErr = turnOnVersioning(ctx, client, bucket, existed)
			}
			abortUploadsRule(ctx, client, bucket)
			return verErr
		},
	}
	c.Flags().BoolVar(&versioning, "versioning", false, "turn on bucket versioning, so deletes and overwrites can be undone (also on a bucket you already own)")
	return c
}

// abortUploadsDays: long enough for any upload still in progress, short
// enough that cut-off parts do not cost storage for long.
const abortUploadsDays = 7

// abortUploadsRule adds the lifecycle rule that aborts incomplete
// multipart uploads, or warns why not; it never fails mb.
func abortUploadsRule(ctx context.Context, client *remote.Client, bucket string) {
	added, err := client.AbortIncompleteUploads(ctx, bucket, abortUploadsDays)
	switch {
	case err == nil && added:
		fmt.Printf("lifecycle: multipart uploads left incomplete in %s are aborted after %d days\n", bucket, abortUploadsDays)
	case err == nil:
		fmt.Printf("lifecycle: %s already has a rule that aborts incomplete multipart uploads; left as it is\n", bucket)
	case errors.Is(err, remote.ErrNotImplemented):
		fmt.Fprintf(os.Stderr, "warning: this store does not support lifecycle rules; multipart uploads left incomplete in %s are not aborted automatically\n", bucket)
	case errors.Is(err, remote.ErrLifecycleExists):
		fmt.Fprintf(os.Stderr, "warning: %s already has lifecycle rules, left unchanged; none of them aborts incomplete multipart uploads (add AbortIncompleteMultipartUpload to them)\n", bucket)
	default:
		fmt.Fprintf(os.Stderr, "warning: could not add the rule that aborts incomplete multipart uploads: %v\n", err)
	}
}

// turnOnVersioning is mb --versioning's second step; its error is the
// command's, since the user asked for it, and says the bucket is there.
func turnOnVersioning(ctx context.Context, client *remote.Client, bucket string, existed bool) error {
	if err := client.EnableVersioning(ctx, bucket); err != nil {
		state := "was created"
		if existed {
			state = "exists"
		}
		return fmt.Errorf("%s %s, but versioning is NOT on: %w", bucket, state, err)
	}
	fmt.Printf("versioning: on for %s; deleted and overwritten objects are kept as old versions\n", bucket)
	return nil
}

func newRbCmd(g *globalFlags) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "rb s3://BUCKET [--force]",
		Short: "Remove a bucket (--force deletes its objects first)",
		Args:  argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, err := bucketArg(args[0])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			client, err := g.client(ctx, 0)
			if err != nil {
				return err
			}
			err = client.RemoveBucket(ctx, bucket, force)
			if force && errors.Is(err, remote.ErrBucketNotEmpty) {
				// A versioned bucket: deleting its objects left their old
				// versions and delete markers, which --force means too.
				n, verr := client.DeleteAllVersions(ctx, bucket)
				if n > 0 {
					fmt.Printf("delete: %s of %s (the bucket kept versions)\n", humanCount(int64(n), "old version or delete marker", "old versions and delete markers"), bucket)
				}
				if verr != nil {
					return fmt.Errorf("remove_bucket failed: %w", verr)
				}
				err = client.RemoveBucket(ctx, bucket, false)
			}
			if err != nil {
				return fmt.Errorf("remove_bucket failed: %w", err)
			}
			fmt.Printf("remove_bucket: %s\n", bucket)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "delete every object in the bucket first, old versions included")
	return c
}

// humanSize prints sizes as the AWS CLI's --human-readable does:
// "1 Byte", "12 Bytes", "1.0 KiB", "3.4 MiB".
func humanSize(n int64) string {
	switch {
	case n == 1:
		return "1 Byte"
	case n < 1024:
		return fmt.Sprintf("%d Bytes", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
