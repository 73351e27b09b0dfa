package syncer

import "unicode/utf8"

func decodeRune(s string) (rune, int) {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return utf8.RuneError, 1
	}
	return r, n
}

// under reports whether p lies below the directory dir.
func under(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}
