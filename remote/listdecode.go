package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

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
