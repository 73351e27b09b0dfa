package remote

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

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
