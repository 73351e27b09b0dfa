package remote

// ReadTwiceAbove makes bodies over n bytes take the read-twice path (hash,
// then send) that only parts of huge objects take otherwise; it returns the
// undo.
func ReadTwiceAbove(n int64) func() {
	old := bufferedBody
	bufferedBody = n
	return func() { bufferedBody = old }
}
