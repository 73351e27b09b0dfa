package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithytime "github.com/aws/smithy-go/time"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fastListDecode is an option of ListObjectsV2 calls: their successful
// response is decoded by decodeListV2 instead of the SDK's generic XML
// decoder, which at a million keys was most of a no-op reconcile's own CPU.
// The request is still built, signed, sent and retried by the SDK, and an
// error response still goes to the SDK's decoder.
func fastListDecode(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		m := &listV2Decoder{}
		sdk, err := st.Deserialize.Swap("OperationDeserializer", m)
		m.sdk = sdk
		return err
	})
}

type listV2Decoder struct {
	sdk middleware.DeserializeMiddleware
}

func (*listV2Decoder) ID() string { return "OperationDeserializer" }

func (m *listV2Decoder) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	out middleware.DeserializeOutput, md middleware.Metadata, err error,
) {
	out, md, err = next.HandleDeserialize(ctx, in)
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if err != nil || !ok || resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return m.sdk.HandleDeserialize(ctx, in, middleware.DeserializeHandlerFunc(
			func(context.Context, middleware.DeserializeInput) (middleware.DeserializeOutput, middleware.Metadata, error) {
				return out, md, err
			}))
	}
	defer func() { smithyhttp.CloseResponseBody(ctx, resp, false, err) }()
	buf := listBufs.Get().(*bytes.Buffer)
	defer listBufs.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return out, md, &smithy.DeserializationError{Err: fmt.Errorf("failed to read response body, %w", err)}
	}
	res, err := decodeListV2(buf.Bytes())
	if err != nil {
		return out, md, &smithy.DeserializationError{Err: fmt.Errorf("ListObjectsV2 response: %w", err)}
	}
	out.Result = res
	return out, md, nil
}

var listBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeListV2 decodes a ListBucketResult as the SDK's decoder does, for
// the fields a listing uses: the page's Name, Prefix, Delimiter, MaxKeys,
// EncodingType, KeyCount, IsTruncated, ContinuationToken,
// NextContinuationToken, StartAfter, CommonPrefixes, and each object's Key,
// Size, ETag, LastModified, StorageClass, ChecksumAlgorithm and
// ChecksumType; other elements are passed over, as the SDK passes over
// those it does not know. Element names match ignoring case, as the SDK's.
// Anything else it cannot read exactly (a DOCTYPE, CDATA, an unknown
// entity, invalid UTF-8, a malformed number or time) is an error.
func decodeListV2(b []byte) (*s3.ListObjectsV2Output, error) {
	d := &xmlScan{b: b}
	if err := d.prolog(); err != nil {
		return nil, err
	}
	if d.i == len(d.b) {
		return &s3.ListObjectsV2Output{}, nil // as the SDK: an empty body is an empty page
	}
	root, err := d.tag()
	if err != nil {
		return nil, err
	}
	if root.end || !eqFold(root.name, "ListBucketResult") {
		return nil, fmt.Errorf("root element <%s>, want <ListBucketResult>", root.name)
	}
	out := &s3.ListObjectsV2Output{}
	err = d.children(root, func(t xmlTag) error {
		switch n := t.name; {
		case eqFold(n, "Contents"):
			var o types.Object
			if err := d.children(t, func(t xmlTag) error { return d.object(&o, t) }); err != nil {
				return err
			}
			out.Contents = append(out.Contents, o)
		case eqFold(n, "CommonPrefixes"):
			var p types.CommonPrefix
			if err := d.children(t, func(t xmlTag) error {
				if eqFold(t.name, "Prefix") {
					return d.str(t, &p.Prefix)
				}
				return d.skip(t)
			}); err != nil {
				return err
			}
			out.CommonPrefixes = append(out.CommonPrefixes, p)
		case eqFold(n, "Name"):
			return d.str(t, &out.Name)
		case eqFold(n, "Prefix"):
			return d.str(t, &out.Prefix)
		case eqFold(n, "Delimiter"):
			return d.str(t, &out.Delimiter)
		case eqFold(n, "ContinuationToken"):
			return d.str(t, &out.ContinuationToken)
		case eqFold(n, "NextContinuationToken"):
			return d.str(t, &out.NextContinuationToken)
		case eqFold(n, "StartAfter"):
			return d.str(t, &out.StartAfter)
		case eqFold(n, "EncodingType"):
			v, ok, err := d.value(t)
			if ok {
				out.EncodingType = types.EncodingType(v)
			}
			return err
		case eqFold(n, "MaxKeys"):
			return d.int32(t, &out.MaxKeys)
		case eqFold(n, "KeyCount"):
			return d.int32(t, &out.KeyCount)
		case eqFold(n, "IsTruncated"):
			return scalar(d, t, strconv.ParseBool, &out.IsTruncated)
		default:
			return d.skip(t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := d.prolog(); err != nil || d.i != len(d.b) {
		return nil, errors.New("content after the root element")
	}
	return out, nil
}

func (d *xmlScan) object(o *types.Object, t xmlTag) error {
	switch n := t.name; {
	case eqFold(n, "Key"):
		return d.str(t, &o.Key)
	case eqFold(n, "ETag"):
		return d.str(t, &o.ETag)
	case eqFold(n, "Size"):
		return scalar(d, t, func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }, &o.Size)
	case eqFold(n, "LastModified"):
		return scalar(d, t, smithytime.ParseDateTime, &o.LastModified)
	case eqFold(n, "StorageClass"):
		v, ok, err := d.value(t)
		if ok {
			o.StorageClass = types.ObjectStorageClass(intern(v))
		}
		return err
	case eqFold(n, "ChecksumAlgorithm"):
		v, ok, err := d.value(t)
		if ok {
			o.ChecksumAlgorithm = append(o.ChecksumAlgorithm, types.ChecksumAlgorithm(intern(v)))
		}
		return err
	case eqFold(n, "ChecksumType"):
		v, ok, err := d.value(t)
		if ok {
			o.ChecksumType = types.ChecksumType(intern(v))
		}
		return err
	default:
		return d.skip(t)
	}
}

// intern spares an allocation for the few values every object repeats.
func intern(v []byte) string {
	for _, s := range [...]string{"STANDARD", "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "FULL_OBJECT", "COMPOSITE"} {
		if string(v) == s {
			return s
		}
	}
	return string(v)
}

// xmlScan reads the XML 1.0 that S3 servers send: elements, attributes
// (passed over), character data with the predefined entities and character
// references, comments and processing instructions between elements.
type xmlScan struct {
	b       []byte
	i       int
	scratch []byte
}

type xmlTag struct {
	name  []byte // local name
	full  []byte // as written, prefix included, to match its end tag
	end   bool   // an end tag
	empty bool   // <name/>
}

func (d *xmlScan) errf(format string, a ...any) error {
	return fmt.Errorf("byte %d: "+format, append([]any{d.i}, a...)...)
}

// prolog passes over white space, the XML declaration, comments and
// processing instructions.
func (d *xmlScan) prolog() error {
	for {
		for d.i < len(d.b) && isSpace(d.b[d.i]) {
			d.i++
		}
		ok, err := d.misc()
		if err != nil || !ok {
			return err
		}
	}
}

// misc passes over one comment or processing instruction at d.i.
func (d *xmlScan) misc() (bool, error) {
	rest := d.b[d.i:]
	var end string
	switch {
	case bytes.HasPrefix(rest, []byte("<?")):
		end = "?>"
	case bytes.HasPrefix(rest, []byte("<!--")):
		end = "-->"
	case bytes.HasPrefix(rest, []byte("<!")):
		return false, d.errf("unsupported markup %q", clip(rest))
	default:
		return false, nil
	}
	j := bytes.Index(rest[2:], []byte(end))
	if j < 0 {
		return false, d.errf("unterminated %q", clip(rest))
	}
	d.i += 2 + j + len(end)
	return true, nil
}

// tag reads the start or end tag at d.i.
func (d *xmlScan) tag() (xmlTag, error) {
	var t xmlTag
	if d.i >= len(d.b) || d.b[d.i] != '<' {
		return t, d.errf("want a tag")
	}
	d.i++
	if d.i < len(d.b) && d.b[d.i] == '/' {
		t.end = true
		d.i++
	}
	s := d.i
	for d.i < len(d.b) && !isSpace(d.b[d.i]) && d.b[d.i] != '>' && d.b[d.i] != '/' {
		d.i++
	}
	t.full = d.b[s:d.i]
	if len(t.full) == 0 || !utf8.Valid(t.full) {
		return t, d.errf("bad element name")
	}
	local := t.full
	if k := bytes.LastIndexByte(local, ':'); k >= 0 {
		local = local[k+1:]
	}
	t.name = local
	// Attributes: passed over, minding quoted values.
	for {
		if d.i >= len(d.b) {
			return t, d.errf("unterminated tag <%s", t.full)
		}
		switch c := d.b[d.i]; c {
		case '"', '\'':
			j := bytes.IndexByte(d.b[d.i+1:], c)
			if j < 0 {
				return t, d.errf("unterminated attribute in <%s", t.full)
			}
			d.i += j + 2
			continue
		case '/':
			if t.end || d.i+1 >= len(d.b) || d.b[d.i+1] != '>' {
				return t, d.errf("bad tag <%s", t.full)
			}
			t.empty = true
			d.i += 2
			return t, nil
		case '>':
			d.i++
			return t, nil
		case '<':
			return t, d.errf("bad tag <%s", t.full)
		}
		if t.end && !isSpace(d.b[d.i]) {
			return t, d.errf("bad end tag </%s", t.full)
		}
		d.i++
	}
}

// children calls fn for each child element of the open element p (which
// must consume the child, end tag included) and consumes p's end tag.
// Text between child elements is passed over, as the SDK does.
func (d *xmlScan) children(p xmlTag, fn func(xmlTag) error) error {
	if p.empty {
		return nil
	}
	for {
		j := bytes.IndexByte(d.b[d.i:], '<')
		if j < 0 {
			return d.errf("<%s> is not closed", p.full)
		}
		if _, err := d.text(d.i + j); err != nil { // still checked: invalid text is an error
			return err
		}
		if ok, err := d.misc(); err != nil {
			return err
		} else if ok {
			continue
		}
		t, err := d.tag()
		if err != nil {
			return err
		}
		if t.end {
			if !bytes.Equal(t.full, p.full) {
				return d.errf("<%s> closed by </%s>", p.full, t.full)
			}
			return nil
		}
		if err := fn(t); err != nil {
			return err
		}
	}
}

// skip consumes the open element t and all it holds.
func (d *xmlScan) skip(t xmlTag) error {
	return d.children(t, d.skip)
}

// value reads the text of the open element t up to its end tag, as the
// SDK's NodeDecoder.Value: "" for <t/> or <t></t>; an element inside, a
// comment or CDATA is an error. ok is false only with an error.
func (d *xmlScan) value(t xmlTag) (v []byte, ok bool, err error) {
	if t.empty {
		return nil, true, nil
	}
	j := bytes.IndexByte(d.b[d.i:], '<')
	if j < 0 {
		return nil, false, d.errf("<%s> is not closed", t.full)
	}
	if v, err = d.text(d.i + j); err != nil {
		return nil, false, err
	}
	e, err := d.tag()
	if err != nil {
		return nil, false, err
	}
	if !e.end || !bytes.Equal(e.full, t.full) {
		return nil, false, d.errf("<%s> holds more than text", t.full)
	}
	return v, true, nil
}

func (d *xmlScan) str(t xmlTag, dst **string) error {
	v, ok, err := d.value(t)
	if ok {
		s := string(v)
		*dst = &s
	}
	return err
}

func (d *xmlScan) int32(t xmlTag, dst **int32) error {
	return scalar(d, t, func(v string) (int32, error) {
		x, err := strconv.ParseInt(v, 10, 64)
		return int32(x), err // as the SDK
	}, dst)
}

// scalar decodes t's text with parse into *dst; an empty element leaves
// *dst nil, as the SDK does.
func scalar[T any](d *xmlScan, t xmlTag, parse func(string) (T, error), dst **T) error {
	v, ok, err := d.value(t)
	if err != nil || !ok {
		return err
	}
	x, err := parse(string(v))
	if err != nil {
		return err
	}
	*dst = &x
	return nil
}

// text decodes the character data from d.i to end, as encoding/xml does:
// entities and character references replaced, a raw "\r\n" or "\r" read as
// "\n"; the result is valid only until the next call.
func (d *xmlScan) text(end int) ([]byte, error) {
	raw := d.b[d.i:end]
	d.i = end
	if bytes.IndexByte(raw, '&') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		if err := checkChars(raw); err != nil {
			return nil, err
		}
		return raw, nil
	}
	out := d.scratch[:0]
	for k := 0; k < len(raw); k++ {
		switch c := raw[k]; c {
		case '\r':
			out = append(out, '\n')
			if k+1 < len(raw) && raw[k+1] == '\n' {
				k++
			}
		case '&':
			semi := bytes.IndexByte(raw[k:], ';')
			if semi < 0 {
				return nil, fmt.Errorf("unterminated entity %q", clip(raw[k:]))
			}
			name := raw[k+1 : k+semi]
			k += semi
			switch string(name) {
			case "amp":
				out = append(out, '&')
			case "lt":
				out = append(out, '<')
			case "gt":
				out = append(out, '>')
			case "quot":
				out = append(out, '"')
			case "apos":
				out = append(out, '\'')
			default:
				r, ok := charRef(name)
				if !ok {
					return nil, fmt.Errorf("unsupported entity &%s;", name)
				}
				out = utf8.AppendRune(out, r)
			}
		default:
			out = append(out, c)
		}
	}
	d.scratch = out
	if err := checkChars(out); err != nil {
		return nil, err
	}
	return out, nil
}

// charRef decodes the name of a character reference, "#65" or "#x41".
func charRef(name []byte) (rune, bool) {
	if len(name) < 2 || name[0] != '#' {
		return 0, false
	}
	var n uint64
	var err error
	if name[1] == 'x' {
		n, err = strconv.ParseUint(string(name[2:]), 16, 32)
	} else {
		n, err = strconv.ParseUint(string(name[1:]), 10, 32)
	}
	if err != nil || !xmlChar(rune(n)) {
		return 0, false
	}
	return rune(n), true
}

// checkChars refuses what encoding/xml refuses in text: invalid UTF-8 and
// characters XML 1.0 does not allow.
func checkChars(b []byte) error {
	for len(b) > 0 {
		if c := b[0]; c >= 0x20 && c < utf8.RuneSelf {
			b = b[1:]
			continue
		}
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			return errors.New("invalid UTF-8 in text")
		}
		if !xmlChar(r) {
			return fmt.Errorf("illegal character code %U", r)
		}
		b = b[n:]
	}
	return nil
}

func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// eqFold is strings.EqualFold(string(s), want) for an ASCII want, without
// allocating for an ASCII s.
func eqFold(s []byte, want string) bool {
	for _, c := range s {
		if c >= utf8.RuneSelf {
			return strings.EqualFold(string(s), want)
		}
	}
	if len(s) != len(want) {
		return false
	}
	for i, a := range s {
		b := want[i]
		if a != b && (a|0x20 != b|0x20 || b|0x20 < 'a' || b|0x20 > 'z') {
			return false
		}
	}
	return true
}

func clip(b []byte) []byte { return b[:min(len(b), 20)] }
