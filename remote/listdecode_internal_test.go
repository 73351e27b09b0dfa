package remote

import (
	"strings"
	"testing"
)

// What the decoder cannot read exactly is one error, never a page with
// something missing.
func TestListDecodeRefuses(t *testing.T) {
	obj := func(inner string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Contents>` + inner + `</Contents></ListBucketResult>`
	}
	for _, c := range []struct{ name, body, want string }{
		{"not a listing", `<Error><Code>X</Code></Error>`, "root element <Error>"},
		{"doctype", `<!DOCTYPE x><ListBucketResult></ListBucketResult>`, "unsupported markup"},
		{"cdata", obj(`<Key><![CDATA[a]]></Key>`), "holds more than text"},
		{"unknown entity", obj(`<Key>a&nbsp;b</Key>`), "unsupported entity &nbsp;"},
		{"NUL reference", obj(`<Key>a&#0;b</Key>`), "unsupported entity &#0;"},
		{"bad size", obj(`<Key>a</Key><Size>1x</Size>`), "invalid syntax"},
		{"bad time", obj(`<Key>a</Key><LastModified>yesterday</LastModified>`), "yesterday"},
		{"bad bool", `<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>`, "invalid syntax"},
		{"unclosed", `<ListBucketResult><Contents><Key>a</Key>`, "not closed"},
		{"mismatched", obj(`<Key>a</Size>`), "holds more than text"},
		{"element in value", obj(`<Key>a<b/></Key>`), "holds more than text"},
		{"invalid UTF-8", obj("<Key>a\xffb</Key>"), "invalid UTF-8"},
		{"control character", obj("<Key>a\x01b</Key>"), "illegal character"},
		{"trailing content", `<ListBucketResult></ListBucketResult><x/>`, "content after the root"},
	} {
		out, err := decodeListV2([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (page %+v), want an error with %q", c.name, err, out, c.want)
		}
	}
}
