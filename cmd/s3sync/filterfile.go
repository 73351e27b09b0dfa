package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/s3sync/s3sync/syncer"
)

// registerFilters adds --exclude, --include, --exclude-from and
// --include-from. All four append to one ordered list, in the order they
// appear on the command line, because the last match wins.
func registerFilters(f *pflag.FlagSet, into *syncer.Filters, shown *[]string) {
	f.Var(&filterFlag{false, into, shown}, "exclude", "exclude paths matching this pattern (repeatable; with --include, the last match wins)")
	f.Var(&filterFlag{true, into, shown}, "include", "do not exclude paths matching this pattern (repeatable)")
	f.Var(&filterFileFlag{filterFlag{false, into, shown}}, "exclude-from", "read --exclude patterns from FILE, one per line; blank lines and lines starting with # or ; are skipped (- reads stdin)")
	f.Var(&filterFileFlag{filterFlag{true, into, shown}}, "include-from", "read --include patterns from FILE, as --exclude-from")
}

// filterFileFlag reads patterns from a file when the flag is parsed, so
// they take the flag's place among --exclude and --include.
type filterFileFlag struct{ filterFlag }

func (f *filterFileFlag) Set(path string) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			// Reported by checkFlagFiles: a missing file needs no
			// pointer to --help.
			flagFileErrs = append(flagFileErrs, fmt.Errorf("--%s: cannot read %s: %v", f.name(), path, unwrapPath(err)))
			return nil
		}
		defer file.Close()
		r = file
	}
	patterns, err := readPatterns(r)
	if err != nil {
		flagFileErrs = append(flagFileErrs, fmt.Errorf("--%s: cannot read %s: %v", f.name(), path, err))
		return nil
	}
	for _, p := range patterns {
		f.filterFlag.Set(p)
	}
	return nil
}

func (f *filterFileFlag) Type() string { return "FILE" }

func (f *filterFileFlag) name() string {
	if f.include {
		return "include-from"
	}
	return "exclude-from"
}

// flagFileErrs are files named by flags that could not be read, reported
// before the command runs.
var flagFileErrs []error

func checkFlagFiles(*cobra.Command, []string) error {
	if len(flagFileErrs) > 0 {
		return &exitError{code: exitSkipped, msg: flagFileErrs[0].Error()}
	}
	return nil
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readPatterns reads one pattern per line as rclone and rsync read their
// filter files: surrounding white space is dropped (a pattern that needs
// it is written with [ ]), and blank lines and whole-line comments
// starting with # or ; are skipped.
func readPatterns(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		out = append(out, line)
	}
	return out, sc.Err()
}
