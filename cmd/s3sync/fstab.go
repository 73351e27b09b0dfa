package main

// mount.s3sync: s3sync called by that name (a symlink, /sbin/mount.s3sync)
// is the helper mount(8) runs for `mount -t s3sync` and fstab lines of
// type s3sync, with the arguments mount(8) gives every helper:
//
//	mount.s3sync s3://BUCKET[/PREFIX] MOUNTPOINT [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE]
//
// mount(8) expects a helper to return once the filesystem is mounted, and
// `s3sync mount` runs until unmounted, so the helper starts it in a
// session of its own and waits for its READY=1 over the sd_notify protocol
// (notify.go), or for it to exit, whose last error line it repeats.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/s3sync/s3sync/remote"
)

const mountHelperName = "mount.s3sync"

// Exit statuses as mount(8) documents its own; it passes a helper's on.
const (
	helperUsage  = 1  // incorrect invocation
	helperFailed = 32 // mount failure
)

const (
	defaultReadyTimeout = 2 * time.Minute
	helperLogName       = "mount.log"
	helperLogMax        = 8 << 20 // rotated to mount.log.1 at the next mount when over this
)

// Options for mount(8) and systemd, not for s3sync: meaningless to a FUSE
// mount that is always nosuid,nodev, or already acted on before the helper
// runs (auto, nofail, _netdev order and fail boot; user lets users mount).
var ignoredMountOptions = map[string]bool{
	"rw": true, "defaults": true, "auto": true, "noauto": true, "nofail": true, "async": true, "exec": true,
	"user": true, "users": true, "nouser": true, "owner": true, "group": true, "_netdev": true,
	"nosuid": true, "nodev": true,
}

// Options s3sync cannot honour: accepting them silently would promise what
// the mount does not do.
var refusedMountOptions = map[string]string{
	"ro":      "s3sync mounts are read-write (every change is mirrored); remove ro",
	"suid":    "s3sync mounts are always nosuid; remove suid",
	"dev":     "s3sync mounts are always nodev; remove dev",
	"remount": "s3sync mounts cannot be remounted: umount and mount again",
}

// helperCall is one parsed call of mount.s3sync.
type helperCall struct {
	remote       string // the device field: s3://BUCKET[/PREFIX]
	mountpoint   string
	workdir      string
	stateDir     string // from state-dir=, else ""
	readyTimeout time.Duration
	flags        []string // `s3sync mount` flags, --name[=value]; a key is fd://N here
	keys         [][]byte // the keys given in the options: keys[i] is the mount's fd 3+i
	warnings     []string
	fake         bool // -f: check everything, mount nothing
	verbose      bool
}

// runMountHelper is main for mount.s3sync.
func runMountHelper(ctx context.Context, args []string) int {
	hc, err := parseHelperArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, mountHelperName+": "+err.Error())
		return helperUsage
	}
	for _, w := range hc.warnings {
		fmt.Fprintln(os.Stderr, mountHelperName+": warning: "+w)
	}
	if hc.fake {
		return 0
	}
	if err := hc.start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, mountHelperName+": "+err.Error())
		return helperFailed
	}
	return 0
}

// parseHelperArgs reads mount(8)'s helper command line. Options name
// `s3sync mount`'s long flags (allow_other is --allow-other), so every
// flag works here without this file knowing it.
func parseHelperArgs(args []string) (*helperCall, error) {
	hc := &helperCall{readyTimeout: defaultReadyTimeout}
	var pos []string
	var opts []string
	sloppy := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s needs a value", a)
			}
			i++
			switch a {
			case "-o":
				opts = append(opts, splitMountOptions(args[i])...)
			case "-N":
				return nil, errors.New("-N (another mount namespace) is not supported; run mount inside the namespace")
			}
		case strings.HasPrefix(a, "-o"):
			opts = append(opts, splitMountOptions(a[2:])...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, c := range a[1:] {
				switch c {
				case 's':
					sloppy = true
				case 'f':
					hc.fake = true
				case 'n': // no /etc/mtab to write
				case 'v':
					hc.verbose = true
				default:
					return nil, fmt.Errorf("unknown flag -%c; mount(8) calls %s as: %s s3://BUCKET[/PREFIX] MOUNTPOINT [-sfnv] [-o OPTIONS]", c, mountHelperName, mountHelperName)
				}
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return nil, fmt.Errorf("want s3://BUCKET[/PREFIX] and MOUNTPOINT, got %d arguments; in fstab: s3://BUCKET/PREFIX /mnt/work s3sync workdir=/srv/work 0 0", len(pos))
	}
	hc.remote = pos[0]
	mp, err := filepath.Abs(pos[1]) // mount(8) gives it absolute; a person may not
	if err != nil {
		return nil, fmt.Errorf("MOUNTPOINT: %v", err)
	}
	hc.mountpoint = mp
	if _, err := remote.ParseURL(hc.remote); err != nil {
		return nil, fmt.Errorf("the device must be the bucket: %v", err)
	}

	mountCmd := helperMountCmd()
	for _, o := range opts {
		name, value, hasValue := strings.Cut(o, "=")
		switch {
		case name == "workdir":
			hc.workdir = value
		case name == "ready-timeout" || name == "ready_timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("ready-timeout=%s: want a duration such as 5m", value)
			}
			hc.readyTimeout = d
		case ignoredMountOptions[name], strings.HasPrefix(name, "x-"), name == "comment":
		case name == "noexec":
			hc.warnings = append(hc.warnings, "noexec is not applied: files in an s3sync mount can be executed as in WORKDIR")
		case refusedMountOptions[name] != "":
			return nil, errors.New(refusedMountOptions[name])
		default:
			flag, err := helperFlag(mountCmd, name, value, hasValue)
			if err != nil && sloppy {
				hc.warnings = append(hc.warnings, err.Error()+" (ignored: -s)")
				continue
			}
			if err != nil {
				return nil, err
			}
			if long := strings.ReplaceAll(name, "_", "-"); secretFlags[long] && hasValue && !isKeyReference(value) {
				// The mount gets the key through a pipe (start), never on
				// its command line, which every user can read.
				hc.keys = append(hc.keys, []byte(value))
				flag = fmt.Sprintf("--%s=fd://%d", long, 2+len(hc.keys))
				hc.warnings = append(hc.warnings, fmt.Sprintf("%s is in the mount options, which /etc/fstab and mount's command line show to every user: keep the key in a file only you can read and give %s=fileb:///PATH", name, name))
			}
			hc.flags = append(hc.flags, flag)
			if name == "state-dir" || name == "state_dir" {
				hc.stateDir = value
			}
		}
	}
	if hc.workdir == "" {
		return nil, errors.New("no workdir= option: say which folder to serve, e.g. -o workdir=/srv/work (in fstab: s3://BUCKET/PREFIX /mnt/work s3sync workdir=/srv/work 0 0)")
	}
	if !filepath.IsAbs(hc.workdir) {
		return nil, fmt.Errorf("workdir=%s: give an absolute path", hc.workdir)
	}
	if hc.stateDir != "" && !filepath.IsAbs(hc.stateDir) {
		return nil, fmt.Errorf("state-dir=%s: give an absolute path", hc.stateDir)
	}
	// Values mount's own flags would refuse (settle=abc) fail here, with
	// the flag's own message, rather than in the background.
	if err := mountCmd.ParseFlags(hc.flags); err != nil {
		return nil, fmt.Errorf("-o: %v", err)
	}
	return hc, nil
}

// helperMountCmd is `s3sync mount` as the CLI builds it, to look up and
// check its flags.
func helperMountCmd() *cobra.Command {
	root := newRootCmd()
	c, _, err := root.Find([]string{"mount"})
	if err != nil {
		panic(err) // the command is registered by mount.go's init
	}
	return c
}

// helperFlag turns one -o option into the `s3sync mount` flag it names.
func helperFlag(mountCmd *cobra.Command, name, value string, hasValue bool) (string, error) {
	long := strings.ReplaceAll(name, "_", "-")
	f := mountCmd.Flag(long)
	if f == nil || long == "help" {
		return "", fmt.Errorf("unknown option %s: use an `s3sync mount` flag without its dashes (allow_other, delete, profile=NAME, state-dir=DIR…), workdir=DIR or ready-timeout=DURATION", name)
	}
	if hasValue {
		return "--" + long + "=" + value, nil
	}
	if f.Value.Type() != "bool" && f.NoOptDefVal == "" {
		return "", fmt.Errorf("option %s needs a value: %s=…", name, name)
	}
	return "--" + long, nil
}

// splitMountOptions splits at commas outside double quotes, as libmount
// does (exclude="*.tmp,*.bak"), and drops the quotes.
func splitMountOptions(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
			}
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
