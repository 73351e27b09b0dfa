package state

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/cache"
)

func TestRootIDSame(t *testing.T) {
	base := rootID{FSUUID: "1b2c", FSID: "aa", Dev: 0x801, Ino: 1234, Birth: 5, Gen: "1"}
	for _, c := range []struct {
		name string
		mod  func(*rootID)
		same bool
	}{
		{"unchanged", func(*rootID) {}, true},
		// A removable disk gets another device number after a reboot.
		{"device renumbered, same UUID", func(r *rootID) { r.Dev, r.FSID = 0x811, "bb" }, true},
		{"another filesystem", func(r *rootID) { r.FSUUID, r.FSID = "9f9f", "cc" }, false},
		{"folder made again, new inode", func(r *rootID) { r.Ino = 99 }, false},
		// ext4 may hand a new folder the inode number just freed.
		{"folder made again, inode reused", func(r *rootID) { r.Birth = 6 }, false},
		{"no UUID now, same fsid", func(r *rootID) { r.FSUUID, r.Dev = "", 0x811 }, true},
		{"no UUID now, other fsid", func(r *rootID) { r.FSUUID, r.FSID = "", "cc" }, false},
		{"folder made again in the same clock tick", func(r *rootID) { r.Gen = "2" }, false},
		{"no birth time kept", func(r *rootID) { r.Birth = 0 }, true},
		{"no generation kept", func(r *rootID) { r.Gen = "" }, true},
	} {
		cur := base
		c.mod(&cur)
		if got := base.same(cur); got != c.same {
			t.Errorf("%s: same=%v, want %v (%s vs %s)", c.name, got, c.same, base, cur)
		}
	}
}

func TestReadRootID(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	os.Mkdir(dir, 0o755)
	a, err := readRootID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := readRootID(dir); !a.same(b) {
		t.Fatalf("one folder read twice differs: %s, %s", a, b)
	}
	os.Remove(dir)
	os.Mkdir(dir, 0o755)
	if b, _ := readRootID(dir); a.same(b) {
		t.Errorf("a folder made again at the same path is taken for the old one: %s", b)
	}
}

// Endpoints count by the store they reach: every spelling of one
// provider's endpoints is one store, so nobody is refused for a region or
// a port; another provider, or another machine, is another store.
func TestStoreOf(t *testing.T) {
	for _, c := range []struct {
		store     string
		endpoints []string
	}{
		{"aws", []string{"", "aws", "https://s3.amazonaws.com", "https://s3.eu-west-1.amazonaws.com", "https://s3.dualstack.us-east-1.amazonaws.com",
			"https://s3-fips.us-east-2.amazonaws.com:443", "https://bucket.s3.amazonaws.com/"}},
		{"aws-cn", []string{"https://s3.cn-north-1.amazonaws.com.cn"}},
		{"wasabisys.com", []string{"https://s3.wasabisys.com", "https://s3.eu-central-1.wasabisys.com", "https://S3.US-EAST-2.WASABISYS.COM.:443"}},
		{"backblazeb2.com", []string{"https://s3.us-west-004.backblazeb2.com", "https://s3.eu-central-003.backblazeb2.com"}},
		{"example.co.uk", []string{"https://minio.example.co.uk", "https://s3.backup.example.co.uk:9000"}},
		{"localhost", []string{"http://127.0.0.1:9000", "http://localhost:9100", "http://[::1]:9000", "http://127.0.1.1"}},
		{"192.168.1.5", []string{"http://192.168.1.5:9000", "https://192.168.1.5"}},
		{"nas", []string{"http://nas:9000", "http://NAS"}},
		{"nas.local", []string{"http://nas.local:9000", "http://minio.nas.local:9000"}},
	} {
		for _, e := range c.endpoints {
			if got := storeOf(e); got != c.store {
				t.Errorf("storeOf(%q) = %q, want %q", e, got, c.store)
			}
		}
	}
}

// A state made for a bucket on one store refuses the same bucket name on
// another (its cache says what the first one holds, so files would never
// reach the second), with the --adopt advice; another spelling of the
// same store's endpoint is accepted and kept. --adopt drops the cache.
func TestClaimEndpoint(t *testing.T) {
	work := t.TempDir()
	s := openTest(t)
	j, c := s.Journal(), s.Cache()
	if err := c.Put("photo.jpg", cache.Entry{Size: 1, ETag: "e"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const url = "s3://backup/home/"
	for _, e := range []struct {
		endpoint string
		adopt    bool
		refused  string // in the one-line message; "" if accepted
		kept     string // the endpoint the state holds afterwards
	}{
		{"http://nas:9000", false, "", "http://nas:9000"},
		{"http://nas:9100", false, "", "http://nas:9100"},
		{"https://s3.eu-central-1.wasabisys.com", false,
			"mirrors to the store at http://nas:9100, not the one at https://s3.eu-central-1.wasabisys.com", "http://nas:9100"},
		{"", false, "mirrors to the store at http://nas:9100, not the one at AWS (no --endpoint-url)", "http://nas:9100"},
		{"https://s3.eu-central-1.wasabisys.com", true, "", "https://s3.eu-central-1.wasabisys.com"},
		{"https://s3.wasabisys.com", false, "", "https://s3.wasabisys.com"},
	} {
		_, cachedBefore, _ := c.Get("photo.jpg")
		err := s.Claim(work, url, e.endpoint, e.adopt, log)
		switch {
		case e.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", e.endpoint, err)
		case e.refused != "" && (!errors.As(err, new(*MismatchError)) || !strings.Contains(err.Error(), e.refused) || !strings.Contains(err.Error(), "--adopt") || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: got %v, want one line with %q and --adopt", e.endpoint, err, e.refused)
		}
		if got, _ := j.Meta(metaEndpoint); string(got) != e.kept {
			t.Errorf("%s: the state keeps endpoint %q, want %q", e.endpoint, got, e.kept)
		}
		_, cached, _ := c.Get("photo.jpg")
		if want := cachedBefore && !e.adopt; cached != want {
			t.Errorf("%s: cache entry kept = %v, want %v", e.endpoint, cached, want)
		}
	}

	// A state from before endpoints were kept takes the current one.
	legacy := openTest(t)
	if err := legacy.Journal().SetMeta(metaRemote, []byte(url)); err != nil {
		t.Fatal(err)
	}
	if err := legacy.Claim(work, url, "https://s3.wasabisys.com", false, log); err != nil {
		t.Errorf("a state without an endpoint: %v", err)
	}
	if got, _ := legacy.Journal().Meta(metaEndpoint); string(got) != "https://s3.wasabisys.com" {
		t.Errorf("a state without an endpoint keeps %q after its mount", got)
	}
}
