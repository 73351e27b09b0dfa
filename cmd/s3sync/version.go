package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/s3sync/s3sync/third_party/go-fuse/fuse"
	"github.com/spf13/cobra"
)

// version is set at build time (the Makefile passes git describe);
// otherwise it comes from the module version the go command records: the
// tag for `go install …/cmd/s3sync@VERSION`, a pseudo-version with the
// commit for a build in a clone (when it stamps VCS information; `go run`
// does not, which prints "devel").
var version = ""

// versionText is what --version prints: the version, the toolchain and
// every module built in, as `go version -m` would list them, because a
// bug report needs the SDK's and go-fuse's versions as much as ours.
func versionText() string {
	var b strings.Builder
	bi, ok := debug.ReadBuildInfo()
	v := version
	if v == "" && ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	fmt.Fprintf(&b, "s3sync %s\n", v)
	if ok {
		var rev, at, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = ", with uncommitted changes"
				}
			}
		}
		if rev != "" {
			fmt.Fprintf(&b, "- commit: %.12s (%s%s)\n", rev, at, dirty)
		}
	}
	fmt.Fprintf(&b, "- go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	// go-fuse is built from the patched copy inside this module, which the
	// build info does not list as a module.
	fmt.Fprintf(&b, "- %s, patched (third_party/go-fuse)\n", fuse.Upstream)
	if ok {
		for _, d := range bi.Deps {
			if d.Replace != nil {
				fmt.Fprintf(&b, "- %s %s => %s %s\n", d.Path, d.Version, d.Replace.Path, d.Replace.Version)
				continue
			}
			fmt.Fprintf(&b, "- %s %s\n", d.Path, d.Version)
		}
	}
	return b.String()
}

// addVersion gives the root command --version and `s3sync version` (as
// rclone has both).
func addVersion(root *cobra.Command) {
	root.Version = "set" // cobra acts on --version only when Version is set
	// Our own flag, because cobra's would take -v, which is rclone's and
	// the AWS CLI's habit for "verbose".
	root.Flags().Bool("version", false, "print the version of s3sync, Go and every module built in")
	root.SetVersionTemplate("{{printf \"%s\" .Annotations.versionText}}")
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations["versionText"] = versionText()
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version of s3sync, Go and every module built in",
		Args:  argsUsage(cobra.NoArgs),
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), versionText())
		},
	})
}
