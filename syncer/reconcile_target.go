package syncer

import (
	"fmt"
	"strings"
)

// Where a download writes: the checks every source key passes before
// anything lands below the destination.

// target returns where a download of s goes. A key that would land outside
// the destination, or below another key that is itself an object ("x/y"
// after "x"), is reported and counted as skipped. Every source entry
// passes here, transferred or not, so the checks hold on re-runs too.
func (rc *run) target(s entry) (localPath string, ok bool) {
	if rc.dir != Download {
		return "", true
	}
	rel := s.rel
	if s.link {
		rel = strings.TrimSuffix(rel, LinkSuffix)
	}
	p, err := LocalPath(rc.dst.Local, rel)
	if err == nil {
		err = CheckKeyName(rel)
	}
	if err != nil {
		rc.skip(rc.src.Show(s.rel), err)
		return "", false
	}
	if err := parentLink(rc.dst.Local, rc.realDst, rel, rc.opts.Links, &rc.safeDir); err != nil {
		rc.skip(rc.src.Show(s.rel), err)
		return "", false
	}
	parent := rc.objectParent(rel)
	if s.link {
		// A link made by this run is no folder to write below, whether
		// or not it exists yet (downloads run in parallel).
		rc.objDirs[rel+"/"] = s.rel
	}
	if parent != "" {
		rc.skip(rc.src.Show(s.rel), fmt.Errorf("the bucket also holds %s as a file, and a local file cannot also be a folder", rc.src.Show(parent)))
		return "", false
	}
	return p, true
}

// objectParent returns an earlier object key that rel needs as a folder
// ("x" for "x/y"), or "". Listings are sorted, so such a key came first;
// entries whose folder range the listing has passed are dropped.
func (rc *run) objectParent(rel string) string {
	found := ""
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			if k, ok := rc.objDirs[rel[:i+1]]; ok {
				found = k
				break
			}
		}
	}
	rc.objDirs[rel+"/"] = rel
	if rc.seen++; rc.seen%1024 == 0 {
		for dirKey := range rc.objDirs {
			// Keys below "x/" sort before "x0" ('0' follows '/').
			if dirKey[:len(dirKey)-1]+"0" <= rel {
				delete(rc.objDirs, dirKey)
			}
		}
	}
	return found
}
