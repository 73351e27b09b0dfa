package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3sync/s3sync/internal/s3test"
)

// status says whether the bucket keeps old versions, as the mount learned
// at start-up, mounted and unmounted, in text and JSON; when it does not,
// the text says deletes cannot be undone and how to turn versioning on.
func TestMountStatusShowsVersioning(t *testing.T) {
	cases := []struct {
		name     string
		enable   bool
		wantJSON string
		wantText string
	}{
		{"off", false, "off", "versioning:  OFF, deletes and overwrites in the bucket cannot be undone; turn it on with: s3sync mb --versioning s3://"},
		{"enabled", true, "enabled", "versioning:  on, deleted and overwritten objects can be recovered from their old versions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := s3test.Get(t)
			bucket := srv.NewBucket(t)
			if c.enable {
				_, err := srv.Client().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
					VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
				if err != nil {
					t.Fatal(err)
				}
			}
			m := newMount(t, bucket)
			m.start()
			for _, when := range []string{"mounted", "unmounted"} {
				if when == "unmounted" {
					m.stop()
				}
				out, err := exec.Command(bin, "status", "--json", "--state-dir", m.stateDir, m.workdir).Output()
				if err != nil {
					t.Fatalf("%s: status --json: %v", when, err)
				}
				var r struct {
					Mounted    bool   `json:"mounted"`
					Versioning string `json:"versioning"`
				}
				if err := json.Unmarshal(out, &r); err != nil {
					t.Fatalf("%s: status --json %q: %v", when, out, err)
				}
				if r.Mounted != (when == "mounted") || r.Versioning != c.wantJSON {
					t.Errorf("%s: status --json says mounted %v, versioning %q; want %q\n%s", when, r.Mounted, r.Versioning, c.wantJSON, out)
				}
				text, err := exec.Command(bin, "status", "--state-dir", m.stateDir, m.workdir).CombinedOutput()
				if err != nil || !strings.Contains(string(text), c.wantText) {
					t.Errorf("%s: status lacks %q: %v\n%s", when, c.wantText, err, text)
				}
				if !c.enable && !strings.Contains(string(text), "s3sync mb --versioning s3://"+bucket+" ") {
					t.Errorf("%s: status does not name the bucket in the command that turns versioning on\n%s", when, text)
				}
			}
		})
	}
}
