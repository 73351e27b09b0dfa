package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"
)

// Secrets never travel on a command line that others can read: every
// user can read /proc/PID/cmdline (ps shows it), while /proc/PID/environ
// and a process's descriptors are its user's and root's only. So:
//
//   - a key given on s3sync's own command line (--sse-c-key KEY, or
//     mount.s3sync's -o sse-c-key=KEY) is blanked there as soon as s3sync
//     starts (hideSecretArgs), and only what was copied before is used;
//   - mount.s3sync hands such a key to the mount it starts through a pipe
//     (--sse-c-key=fd://3), never on the mount's command line;
//   - keys given as fileb://PATH or fd://N are not secret and stay visible.
//
// The key is in no log line either: the flags are logged only once the
// keys in them are fd:// references.

// secretFlags are the flags whose value is a key, by their long names.
var secretFlags = map[string]bool{"sse-c-key": true, "sse-c-copy-source-key": true}

// isKeyReference reports whether a key flag's value names where the key
// is rather than being the key.
func isKeyReference(v string) bool {
	for _, scheme := range []string{"fileb://", "file://", "fd://"} {
		if strings.HasPrefix(v, scheme) {
			return true
		}
	}
	return false
}

// hideSecretArgs returns a copy of args (os.Args) and overwrites, in the
// process's own argument memory that /proc/PID/cmdline shows, every key
// given there. Go's os.Args strings are that memory (the runtime does not
// copy it), so it is written through them; nothing may use the original
// strings afterwards.
func hideSecretArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.Clone(a)
	}
	if len(args) == 0 {
		return out
	}
	helper := filepath.Base(args[0]) == mountHelperName
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return out
		case helper && a == "-o" && i+1 < len(args):
			i++
			blankOptionKeys(args[i])
		case helper && strings.HasPrefix(a, "-o"):
			blankOptionKeys(a[2:])
		case helper:
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			if !secretFlags[name] {
				continue
			}
			if !hasValue {
				if i+1 == len(args) {
					continue
				}
				i++
				value = args[i]
			}
			blankKey(value)
		}
	}
	return out
}

// blankOptionKeys blanks the key options' values in a mount -o list,
// which splitMountOptions reads: commas inside double quotes do not split.
func blankOptionKeys(opts string) {
	start := 0
	quoted := false
	for i := 0; i <= len(opts); i++ {
		if i < len(opts) && opts[i] == '"' {
			quoted = !quoted
		}
		if i < len(opts) && (opts[i] != ',' || quoted) {
			continue
		}
		name, value, hasValue := strings.Cut(opts[start:i], "=")
		if hasValue && secretFlags[strings.ReplaceAll(name, "_", "-")] {
			blankKey(strings.Trim(value, `"`))
		}
		start = i + 1
	}
}

// blankKey overwrites a key in place, unless it is a reference to one.
func blankKey(v string) {
	if v == "" || isKeyReference(v) {
		return
	}
	b := unsafe.Slice(unsafe.StringData(v), len(v))
	for i := range b {
		b[i] = '*'
	}
}

// readKeyFD reads a key from file descriptor fd (an fd://N key flag) and
// closes it: the pipe mount.s3sync passes, or `3<keyfile` in a shell.
func readKeyFD(fd string) ([]byte, error) {
	n, err := strconv.Atoi(fd)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("fd://%s: not a file descriptor number", fd)
	}
	f := os.NewFile(uintptr(n), "fd://"+fd)
	if f == nil {
		return nil, fmt.Errorf("fd://%s: not a file descriptor number", fd)
	}
	defer f.Close()
	// A key is 32 bytes; reading a little more lets a longer one be
	// refused as such.
	b, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		return nil, fmt.Errorf("fd://%s: %v", fd, err)
	}
	return b, nil
}
