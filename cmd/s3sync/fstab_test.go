package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// What mount(8) passes to mount.s3sync (it always puts rw first, and adds
// noexec,nosuid,nodev for a user mount) becomes `s3sync mount` flags, or
// one line saying what is wrong.
func TestParseHelperArgs(t *testing.T) {
	const dev, mp = "s3://bucket/work", "/mnt/work"
	for _, tc := range []struct {
		name    string
		args    []string
		flags   []string // nil: no flags
		wantErr string   // substring of the one-line error
		check   func(t *testing.T, hc *helperCall)
	}{
		{name: "fstab line with mount(8)'s and systemd's own options",
			args:  []string{dev, mp, "-o", "rw,workdir=/srv/work,delete,allow_other,profile=wasabi,_netdev,nofail,noauto,defaults,x-systemd.requires-mounts-for=/srv,comment=hi"},
			flags: []string{"--delete", "--allow-other", "--profile=wasabi"}},
		{name: "underscores name dashed flags; repeated flags stay in order; quoted commas",
			args:  []string{dev, mp, "-o", `workdir=/srv/work,state_dir=/var/lib/s3sync/work,exclude="*.tmp,*.bak",include=keep.tmp,endpoint-url=http://127.0.0.1:9000,region=eu-1`},
			flags: []string{"--state-dir=/var/lib/s3sync/work", "--exclude=*.tmp,*.bak", "--include=keep.tmp", "--endpoint-url=http://127.0.0.1:9000", "--region=eu-1"},
			check: func(t *testing.T, hc *helperCall) {
				if hc.stateDir != "/var/lib/s3sync/work" {
					t.Errorf("state dir %q", hc.stateDir)
				}
			}},
		{name: "a flag with an optional value, alone and with one",
			args:  []string{dev, mp, "-o", "workdir=/w,pull,settle=200ms,concurrency=4,xattrs"},
			flags: []string{"--pull", "--settle=200ms", "--concurrency=4", "--xattrs"}},
		{name: "a user mount's implied options; -v -n; -oOPTS spelled as one word",
			args: []string{dev, mp, "-vn", "-orw,noexec,nosuid,nodev,user,workdir=/w"},
			check: func(t *testing.T, hc *helperCall) {
				if !hc.verbose || len(hc.warnings) != 1 || !strings.Contains(hc.warnings[0], "noexec") {
					t.Errorf("verbose %v, warnings %q", hc.verbose, hc.warnings)
				}
			}},
		{name: "ready-timeout and -f",
			args: []string{dev, mp, "-f", "-o", "workdir=/w,ready-timeout=10m", "-t", "s3sync"},
			check: func(t *testing.T, hc *helperCall) {
				if !hc.fake || hc.readyTimeout != 10*time.Minute {
					t.Errorf("fake %v, ready timeout %v", hc.fake, hc.readyTimeout)
				}
			}},
		{name: "sloppy: unknown options are warned about, not refused",
			args: []string{dev, mp, "-s", "-o", "workdir=/w,bogus"},
			check: func(t *testing.T, hc *helperCall) {
				if len(hc.warnings) != 1 || !strings.Contains(hc.warnings[0], "bogus") {
					t.Errorf("warnings %q", hc.warnings)
				}
			}},
		{name: "a key file's path stays on the command line",
			args:  []string{dev, mp, "-o", "workdir=/w,sse-c=AES256,sse-c-key=fileb:///etc/k"},
			flags: []string{"--sse-c=AES256", "--sse-c-key=fileb:///etc/k"},
			check: func(t *testing.T, hc *helperCall) {
				if len(hc.keys) != 0 || len(hc.warnings) != 0 {
					t.Errorf("keys %q, warnings %q", hc.keys, hc.warnings)
				}
			}},
		{name: "a key goes through a pipe",
			args:  []string{dev, mp, "-o", "workdir=/w,sse-c=AES256,sse_c_key=0123456789abcdef0123456789abcdef"},
			flags: []string{"--sse-c=AES256", "--sse-c-key=fd://3"},
			check: func(t *testing.T, hc *helperCall) {
				if len(hc.keys) != 1 || string(hc.keys[0]) != "0123456789abcdef0123456789abcdef" {
					t.Errorf("keys %q", hc.keys)
				}
				if len(hc.warnings) != 1 || !strings.Contains(hc.warnings[0], "sse_c_key is in the mount options") || strings.Contains(hc.warnings[0], "0123") {
					t.Errorf("warnings %q", hc.warnings)
				}
			}},
		{name: "unknown option", args: []string{dev, mp, "-o", "workdir=/w,bogus=1"}, wantErr: "unknown option bogus"},
		{name: "ro", args: []string{dev, mp, "-o", "ro,workdir=/w"}, wantErr: "read-write"},
		{name: "suid", args: []string{dev, mp, "-o", "workdir=/w,suid"}, wantErr: "nosuid"},
		{name: "remount", args: []string{dev, mp, "-o", "remount,workdir=/w"}, wantErr: "umount and mount again"},
		{name: "no workdir", args: []string{dev, mp, "-o", "rw,delete"}, wantErr: "no workdir= option"},
		{name: "relative workdir", args: []string{dev, mp, "-o", "workdir=work"}, wantErr: "absolute path"},
		{name: "flag needing a value given none", args: []string{dev, mp, "-o", "workdir=/w,profile"}, wantErr: "option profile needs a value"},
		{name: "flag value the flag refuses", args: []string{dev, mp, "-o", "workdir=/w,settle=soon"}, wantErr: `invalid argument "soon"`},
		{name: "help is no option", args: []string{dev, mp, "-o", "workdir=/w,help"}, wantErr: "unknown option help"},
		{name: "device is not a bucket", args: []string{"/dev/sdb1", mp, "-o", "workdir=/w"}, wantErr: "the device must be the bucket"},
		{name: "missing mountpoint", args: []string{dev, "-o", "workdir=/w"}, wantErr: "want s3://BUCKET[/PREFIX] and MOUNTPOINT"},
		{name: "mount namespace", args: []string{dev, mp, "-N", "1234", "-o", "workdir=/w"}, wantErr: "not supported"},
		{name: "bad ready-timeout", args: []string{dev, mp, "-o", "workdir=/w,ready-timeout=0s"}, wantErr: "ready-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc, err := parseHelperArgs(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if hc.remote != dev || hc.mountpoint != mp {
				t.Errorf("remote %q mountpoint %q", hc.remote, hc.mountpoint)
			}
			if !slices.Equal(hc.flags, tc.flags) {
				t.Errorf("flags %q, want %q", hc.flags, tc.flags)
			}
			if tc.check != nil {
				tc.check(t, hc)
			}
		})
	}
}

func TestChildError(t *testing.T) {
	for _, tc := range []struct{ log, want string }{
		{"earlier run\ns3sync: old failure\n" + "time=x level=INFO msg=starting\ns3sync: WORKDIR /w is not a directory; create it first\nRun 's3sync --help' for usage.\n",
			"WORKDIR /w is not a directory; create it first"},
		{"earlier run\ns3sync: old failure\n" + "time=x level=INFO msg=a\ntime=y level=ERROR msg=journal err=disk\n", "time=y level=ERROR msg=journal err=disk"},
		{"earlier run\ns3sync: old failure\n" + "panic: boom\n\ngoroutine 1\n", "goroutine 1"},
		{"earlier run\ns3sync: old failure\n", "s3sync mount failed"},
	} {
		path := t.TempDir() + "/mount.log"
		if err := os.WriteFile(path, []byte(tc.log), 0o600); err != nil {
			t.Fatal(err)
		}
		from := int64(len("earlier run\ns3sync: old failure\n"))
		if got := childError(path, from); got != tc.want {
			t.Errorf("childError(%q) = %q, want %q", tc.log, got, tc.want)
		}
	}
}
