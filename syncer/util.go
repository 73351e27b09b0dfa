package syncer

import "unicode/utf8"

func decodeRune(s string) (rune, int) {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return utf8.RuneError, 1
	}
	return r, n
}

// Under reports whether the slash-separated path p lies below the
// directory dir (not dir itself).
func Under(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && p[:len(dir)] == dir
}
