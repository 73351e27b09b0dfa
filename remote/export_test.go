package remote

import "github.com/aws/aws-sdk-go-v2/service/s3"

// ReadTwiceAbove makes bodies over n bytes take the read-twice path (hash,
// then send) that only parts of huge objects take otherwise; it returns the
// undo.
func ReadTwiceAbove(n int64) func() {
	old := bufferedBody
	bufferedBody = n
	return func() { bufferedBody = old }
}

// CopyInPartsAbove makes copies over n bytes take the multipart path
// (UploadPartCopy) that only objects over 5 GiB take otherwise; it returns
// the undo.
func CopyInPartsAbove(n int64) func() {
	old := maxCopyPart
	maxCopyPart = n
	return func() { maxCopyPart = old }
}

// S3 is the client's SDK client, for tests that compare with the SDK.
func (c *Client) S3() *s3.Client { return c.s3 }

// FastListDecode is the option that decodes ListObjectsV2 with our decoder.
var FastListDecode = fastListDecode
