package syncer

import "strings"

// Filters are --exclude/--include rules in command-line order. As in the
// AWS CLI, every path starts included, each rule that matches decides
// again, so the last match wins; "*" matches across "/".
type Filters struct {
	rules []rule
	// never holds folders excluded whatever the rules say (Never).
	never []string
}

type rule struct {
	include bool
	pattern string
}

// Add appends a rule.
func (f *Filters) Add(include bool, pattern string) {
	f.rules = append(f.rules, rule{include, pattern})
}

// Never excludes the folder dir (slash-separated, relative) and everything
// below it, whatever the rules say: s3sync's own state inside WORKDIR.
func (f *Filters) Never(dir string) {
	f.never = append(f.never, strings.Trim(dir, "/"))
}

// Empty reports whether there are no rules.
func (f *Filters) Empty() bool { return f == nil || len(f.rules) == 0 && len(f.never) == 0 }

// Excluded reports whether the relative path (slash-separated, as the key
// below the source or destination root) is filtered out.
func (f *Filters) Excluded(rel string) bool {
	if f == nil {
		return false
	}
	for _, d := range f.never {
		if rel == d || strings.HasPrefix(rel, d) && len(rel) > len(d) && rel[len(d)] == '/' {
			return true
		}
	}
	excluded := false
	for _, r := range f.rules {
		if matchGlob(r.pattern, rel) {
			excluded = !r.include
		}
	}
	return excluded
}

// ExcludedKey is Excluded for a key suffix: a directory marker ("dir/") is
// excluded when the filters exclude it ("cache/*" matches "cache/") or the
// directory's own name.
func (f *Filters) ExcludedKey(rel string) bool {
	if IsMarker(rel) && f.Excluded(MarkerDir(rel)) {
		return true
	}
	return f.Excluded(rel)
}

// matchGlob is fnmatch as Python's fnmatch does it (which is what the AWS
// CLI uses): "*" any run of characters including "/", "?" one character,
// "[seq]" and "[!seq]" a set. The AWS CLI matches patterns against the full
// path (root joined with the pattern), which equals matching the relative
// path against the pattern with a leading "./" or "/" removed.
func matchGlob(pattern, name string) bool {
	pattern = strings.TrimPrefix(pattern, "./")
	pattern = strings.TrimPrefix(pattern, "/")
	return globAt(pattern, name)
}

func globAt(p, s string) bool {
	// Iterative matcher with backtracking to the last "*".
	var starP, starS = -1, 0
	pi, si := 0, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starS = pi, si
				pi++
				continue
			case '?':
				_, n := decodeRune(s[si:])
				pi++
				si += n
				continue
			case '[':
				if ok, plen, matched := matchClass(p[pi:], s[si:]); ok {
					if matched > 0 {
						pi += plen
						si += matched
						continue
					}
				} else if s[si] == '[' { // unterminated class: a literal "["
					pi++
					si++
					continue
				}
			default:
				if p[pi] == s[si] {
					pi++
					si++
					continue
				}
			}
		}
		if starP >= 0 {
			starS++
			pi, si = starP+1, starS
			continue
		}
		return false
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchClass matches a "[...]" class at the start of p against the first
// character of s. ok is false when the class is unterminated; plen is the
// class's length in p; matched is the byte length of the matched character,
// 0 when it did not match.
func matchClass(p, s string) (ok bool, plen, matched int) {
	end := 1
	if end < len(p) && p[end] == '!' {
		end++
	}
	if end < len(p) && p[end] == ']' {
		end++
	}
	for end < len(p) && p[end] != ']' {
		end++
	}
	if end >= len(p) {
		return false, 0, 0
	}
	body := p[1:end]
	negate := strings.HasPrefix(body, "!")
	if negate {
		body = body[1:]
	}
	c, n := decodeRune(s)
	in := false
	for i := 0; i < len(body); {
		lo, ln := decodeRune(body[i:])
		i += ln
		hi := lo
		if i+1 < len(body) && body[i] == '-' {
			h, hn := decodeRune(body[i+1:])
			hi = h
			i += 1 + hn
		}
		if lo <= c && c <= hi {
			in = true
		}
	}
	if in != negate {
		return true, end + 1, n
	}
	return true, end + 1, 0
}
