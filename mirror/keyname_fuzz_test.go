package mirror

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3sync/s3sync/syncer"
)

// FuzzKeyName: a key the pull and restore accept (CheckKeyName, then the
// clash rules of refusal) maps to a path strictly below the destination,
// with no control character to forge an output line, and the same key
// given twice in one listing is never refused for clashing with itself.
func FuzzKeyName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "..", "../x", "a/../../x", "/etc/passwd", "a//b", "a\nb", "a\x7f", "x.rclonelink", "x/", "x/y/", ".s3sync-tmp-1", "a\u2028b", "..0", "..a/b"} {
		f.Add(s)
	}
	root := "/work/dst"
	f.Fuzz(func(t *testing.T, key string) {
		name := strings.TrimSuffix(key, "/")
		if syncer.CheckKeyName(name) != nil {
			if refusal(key, map[string]bool{}) == nil {
				t.Fatalf("refusal accepts %q, which CheckKeyName refuses", key)
			}
			return
		}
		p, err := syncer.LocalPath(root, name)
		if err != nil {
			t.Fatalf("LocalPath(%q): %v after CheckKeyName accepted it", name, err)
		}
		if rel, err := filepath.Rel(root, p); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("key %q lands at %s, not below %s", key, p, root)
		}
		if strings.ContainsAny(name, "\n\r\x00\x1b") {
			t.Fatalf("key %q with a control character accepted", key)
		}
		if err := refusal(key, map[string]bool{key: true}); err != nil {
			t.Fatalf("key %q clashes with itself: %v", key, err)
		}
	})
}
