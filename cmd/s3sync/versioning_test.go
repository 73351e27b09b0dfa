package main

import (
	"strings"
	"testing"

	"github.com/s3sync/s3sync/internal/synctest"
	"github.com/s3sync/s3sync/mirror"
	"github.com/s3sync/s3sync/remote"
)

// status reports the versioning state the mount kept, and where deletes
// and overwrites cannot be undone, says so with the command that fixes it.
func TestStatusVersioning(t *testing.T) {
	cases := []struct {
		stored string // "" = a state from before the mount recorded it
		want   remote.Versioning
		line   []string
	}{
		{"", remote.VersioningUnknown, []string{"unknown"}},
		{"unknown", remote.VersioningUnknown, []string{"unknown"}},
		{"off", remote.VersioningOff, []string{"OFF", "cannot be undone", "s3sync mb --versioning s3://photos"}},
		{"suspended", remote.VersioningSuspended, []string{"SUSPENDED", "cannot be undone", "s3sync mb --versioning s3://photos"}},
		{"enabled", remote.VersioningEnabled, []string{"on,", "recovered"}},
	}
	for _, c := range cases {
		st := synctest.OpenState(t)
		if c.stored != "" {
			if err := st.SetVersioning(remote.Versioning(c.stored)); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := mirror.BuildReport(mirror.MountInfo{Workdir: t.TempDir(), Remote: "s3://photos/2024"}, st, false, mirror.State{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Versioning != c.want {
			t.Errorf("stored %q: report says %q, want %q", c.stored, rep.Versioning, c.want)
		}
		line := versioningLine(rep.Versioning, rep.Remote)
		for _, part := range c.line {
			if !strings.Contains(line, part) {
				t.Errorf("stored %q: line %q lacks %q", c.stored, line, part)
			}
		}
	}
}
