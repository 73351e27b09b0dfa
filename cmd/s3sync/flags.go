package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/s3sync/s3sync/remote"
	"github.com/s3sync/s3sync/syncer"
)

// globalFlags are the AWS CLI's global options, accepted before or after
// the command.
type globalFlags struct {
	profile  string
	endpoint string
	region   string
	// xfer, when a command has them, are its --bwlimit and encryption
	// flags, for every client it makes.
	xfer *transferFlags
}

func (g *globalFlags) register(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringVar(&g.profile, "profile", "", "use this profile from ~/.aws/config and ~/.aws/credentials")
	f.StringVar(&g.endpoint, "endpoint-url", "", "S3 endpoint, e.g. https://s3.wasabisys.com (default: the profile's endpoint_url, else AWS)")
	f.StringVar(&g.region, "region", "", "region to sign requests for (default: the profile's, else us-east-1)")
}

func (g *globalFlags) client(ctx context.Context, concurrency int) (*remote.Client, error) {
	cfg := remote.Config{
		Profile: g.profile, EndpointURL: g.endpoint, Region: g.region,
		MaxConns: max(64, concurrency*2),
	}
	if g.xfer != nil {
		cfg = g.xfer.apply(cfg)
	}
	c, err := remote.New(ctx, cfg)
	if errors.Is(err, remote.ErrKeyInClear) {
		return nil, usageErr("%v: use an https:// --endpoint-url", err)
	}
	return c, err
}

// clientFor is client, after checking that the bucket of each S3 endpoint
// exists and answers, so a wrong name or key fails once, not per file.
func (g *globalFlags) clientFor(ctx context.Context, concurrency int, eps ...syncer.Endpoint) (*remote.Client, error) {
	client, err := g.client(ctx, concurrency)
	if err != nil {
		return nil, err
	}
	for _, e := range eps {
		if e.IsS3 {
			if err := client.CheckBucket(ctx, e.S3.Bucket); err != nil {
				return nil, err
			}
		}
	}
	return client, nil
}

// filterFlag appends to one ordered list from both --exclude and
// --include, because their relative order decides (last match wins).
type filterFlag struct {
	include bool
	into    *syncer.Filters
	shown   *[]string
}

func (f *filterFlag) Set(v string) error {
	f.into.Add(f.include, v)
	*f.shown = append(*f.shown, v)
	return nil
}
func (f *filterFlag) String() string { return "" }
func (f *filterFlag) Type() string   { return "pattern" }

// syncFlags are the flags shared by reconcile and mount.
type syncFlags struct {
	delete       bool
	storageClass string
	concurrency  int
	filters      syncer.Filters
	patterns     []string

	maxDeleteArg string
	maxDelete    syncer.MaxDelete // parsed from maxDeleteArg by validate

	xfer transferFlags // --bwlimit, --sse…
}

func (s *syncFlags) register(f *pflag.FlagSet) {
	f.BoolVar(&s.delete, "delete", false, "delete files at the destination that are not at the source")
	f.StringVar(&s.storageClass, "storage-class", "", "storage class for uploads and copies: "+strings.Join(storageClasses, ", "))
	f.IntVar(&s.concurrency, "concurrency", syncer.DefaultConcurrency, "transfers in flight")
	registerFilters(f, &s.filters, &s.patterns)
	s.xfer.register(f)
	f.StringVar(&s.maxDeleteArg, "max-delete", "", fmt.Sprintf("with --delete, delete at most N paths or P%% of the destination in one run, else nothing; -1 or 100%% for no limit (default: refuse over %d%% of the destination and over %d paths)", syncer.DefaultMaxDeletePercent, syncer.DefaultMaxDeleteMin))
}

// storageClasses are S3's, as the AWS CLI accepts them.
var storageClasses = []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
	"INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE"}

func (s *syncFlags) validate() error {
	if s.storageClass != "" {
		up := strings.ToUpper(s.storageClass)
		if !slices.Contains(storageClasses, up) {
			return usageErr("--storage-class %q is not an S3 storage class; use one of %s", s.storageClass, strings.Join(storageClasses, ", "))
		}
		s.storageClass = up
	}
	if s.concurrency < 1 || s.concurrency > 1000 {
		return usageErr("--concurrency %d is out of range; use 1 to 1000", s.concurrency)
	}
	if s.maxDeleteArg != "" {
		m, err := syncer.ParseMaxDelete(s.maxDeleteArg)
		if err != nil {
			return usageErr("%v", err)
		}
		s.maxDelete = m
	}
	return s.xfer.validate()
}

// parseEndpoints reads the SRC and DST arguments.
func parseEndpoints(args []string) (src, dst syncer.Endpoint, err error) {
	if src, err = parseEndpoint(args[0]); err != nil {
		return
	}
	dst, err = parseEndpoint(args[1])
	return
}

func parseEndpoint(arg string) (syncer.Endpoint, error) {
	e, err := syncer.ParseEndpoint(arg)
	if err != nil {
		return e, usageErr("%v", err)
	}
	return e, nil
}

func humanCount(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
