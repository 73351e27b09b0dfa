package main

import (
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
				fmt.Printf("%s %10s %s\n", o.LastModified.Local().Format("2006-01-02 15:04:05"), size(o.Size), name)
				return nil
			}
			if recursive {
				err = client.List(ctx, bucket, prefix, obj)
			} else {
				err = client.ListDir(ctx, bucket, prefix, obj, func(p string) error {
					fmt.Printf("%30s %s\n", "PRE", strings.TrimPrefix(p, prefix[:strings.LastIndex(prefix, "/")+1]))
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
	return &cobra.Command{
		Use:   "mb s3://BUCKET [--region R]",
		Short: "Make a private bucket, with public access blocked",
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
			if err != nil {
				return fmt.Errorf("make_bucket failed: %w", err)
			}
			fmt.Printf("make_bucket: %s\n", bucket)
			if pubErr != nil {
				if errors.Is(pubErr, remote.ErrNotImplemented) {
					fmt.Fprintf(os.Stderr, "warning: this store does not support public access blocks; %s is private by its ACL only\n", bucket)
				} else {
					fmt.Fprintf(os.Stderr, "warning: could not block public access on %s: %v\n", bucket, pubErr)
				}
			}
			return nil
		},
	}
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
			if err := client.RemoveBucket(ctx, bucket, force); err != nil {
				return fmt.Errorf("remove_bucket failed: %w", err)
			}
			fmt.Printf("remove_bucket: %s\n", bucket)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "delete every object in the bucket first")
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
