// Package downgrade makes a message fit a next hop that does not offer
// 8BITMIME or SMTPUTF8, where that is safe, as RFC 6152 asks (and Postfix
// does): 8-bit leaf parts become quoted-printable (text) or base64 (the
// rest), and UTF-8 in an unstructured header (Subject, Comments) becomes
// RFC 2047 encoded words. What cannot be converted safely (UTF-8 in an
// address header, 8 bits inside a message/* part, broken MIME) is an
// error, and the caller bounces the message.
//
// A DKIM signature covers the body and usually the Subject: a converted
// message no longer verifies. Convert reports whether the message was
// signed, so the caller can say so; smtp-bs delivers the converted message
// (a bounce helps no one more than a signature that fails) and says so in
// the log and the recorded reply.
package downgrade

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"strings"
	"unicode/utf8"
)

// Needs is what a message needs of the next hop.
type Needs struct {
	EightBit    bool // a byte >= 0x80 anywhere: 8BITMIME
	UTF8Headers bool // a byte >= 0x80 in the header section: SMTPUTF8 (RFC 6532)
	DKIM        bool // a DKIM-Signature field
}

// Scan says what msg needs.
func Scan(msg []byte) Needs {
	hdr, body := split(msg)
	n := Needs{UTF8Headers: has8bit(hdr)}
	n.EightBit = n.UTF8Headers || has8bit(body)
	for _, f := range fields(hdr) {
		if strings.EqualFold(f.name, "DKIM-Signature") {
			n.DKIM = true
		}
	}
	return n
}

// ErrCannot wraps every reason a message cannot be converted.
var ErrCannot = errors.New("cannot be converted")

func cannot(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCannot, fmt.Sprintf(format, a...))
}

// Convert returns msg with only 7-bit bytes, or an error wrapping ErrCannot.
func Convert(msg []byte) ([]byte, error) {
	if !has8bit(msg) {
		return msg, nil
	}
	hdr, body := split(msg)
	fs := fields(hdr)
	for i, f := range fs {
		if !has8bit([]byte(f.raw)) {
			continue
		}
		switch strings.ToLower(f.name) {
		case "subject", "comments":
			v := strings.TrimSpace(unfold(f.raw[len(f.name)+1:]))
			if !utf8.ValidString(v) {
				return nil, cannot("the %s field is not UTF-8", f.name)
			}
			fs[i].raw = f.name + ": " + mime.QEncoding.Encode("utf-8", v) + "\r\n"
		default:
			return nil, cannot("the %s field carries UTF-8", f.name)
		}
	}
	top := !hasField(fs, "MIME-Version")
	out, err := entity(fs, body, top, 0)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// entity converts one MIME entity: its fields and its body.
func entity(fs []field, body []byte, addMIME bool, depth int) ([]byte, error) {
	if depth > 20 {
		return nil, cannot("MIME nested too deep")
	}
	for _, f := range fs {
		if has8bit([]byte(f.raw)) {
			return nil, cannot("8-bit bytes in the header of a part")
		}
	}
	var b bytes.Buffer
	write := func(fs []field) {
		for _, f := range fs {
			b.WriteString(f.raw)
		}
		b.WriteString("\r\n")
	}
	if !has8bit(body) {
		write(fs)
		b.Write(body)
		return b.Bytes(), nil
	}
	ct, params, err := mime.ParseMediaType(get(fs, "Content-Type"))
	if get(fs, "Content-Type") == "" {
		ct, params, err = "text/plain", nil, nil
	}
	if err != nil {
		return nil, cannot("Content-Type: %v", err)
	}
	cte := strings.ToLower(strings.TrimSpace(get(fs, "Content-Transfer-Encoding")))
	switch cte {
	case "", "7bit", "8bit", "binary":
	default:
		return nil, cannot("8-bit bytes under Content-Transfer-Encoding %s", cte)
	}
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		boundary := params["boundary"]
		if boundary == "" {
			return nil, cannot("multipart without a boundary")
		}
		parts, err := splitParts(body, boundary)
		if err != nil {
			return nil, err
		}
		write(fs)
		for _, p := range parts {
			if !p.part {
				if has8bit(p.b) {
					return nil, cannot("8-bit bytes in a multipart preamble or epilogue")
				}
				b.Write(p.b)
				continue
			}
			ph, pb := split(p.b)
			conv, err := entity(fields(ph), pb, false, depth+1)
			if err != nil {
				return nil, err
			}
			b.Write(conv)
		}
		return b.Bytes(), nil
	case strings.HasPrefix(ct, "message/"):
		return nil, cannot("8-bit bytes inside a %s part", ct)
	}
	kept := fs[:0:0]
	for _, f := range fs {
		if !strings.EqualFold(f.name, "Content-Transfer-Encoding") {
			kept = append(kept, f)
		}
	}
	if addMIME {
		kept = append(kept, field{name: "MIME-Version", raw: "MIME-Version: 1.0\r\n"})
		if get(fs, "Content-Type") == "" {
			cs := "utf-8"
			if !utf8.Valid(body) {
				cs = "unknown-8bit" // RFC 1428
			}
			kept = append(kept, field{name: "Content-Type", raw: "Content-Type: text/plain; charset=" + cs + "\r\n"})
		}
	}
	if strings.HasPrefix(ct, "text/") {
		kept = append(kept, field{raw: "Content-Transfer-Encoding: quoted-printable\r\n"})
		write(kept)
		w := quotedprintable.NewWriter(&b)
		w.Write(body)
		w.Close()
		return b.Bytes(), nil
	}
	kept = append(kept, field{raw: "Content-Transfer-Encoding: base64\r\n"})
	write(kept)
	enc := base64.StdEncoding.EncodeToString(body)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.Bytes(), nil
}

// segment is a piece of a multipart body: a part to convert, or what
// lies around the parts (preamble, delimiter lines, epilogue) kept as is.
type segment struct {
	b    []byte
	part bool
}

// splitParts cuts a multipart body at its delimiter lines (RFC 2046
// 5.1.1: the line break before a delimiter belongs to the delimiter).
func splitParts(body []byte, boundary string) ([]segment, error) {
	delim := []byte("--" + boundary)
	var out []segment
	last, partStart := 0, -1
	for pos := 0; pos < len(body); {
		end := bytes.IndexByte(body[pos:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += pos + 1
		}
		line := bytes.TrimRight(body[pos:end], "\r\n")
		rest, isDelim := bytes.CutPrefix(line, delim)
		rest = bytes.TrimRight(rest, " \t")
		closing := bytes.Equal(rest, []byte("--"))
		if isDelim && (closing || len(rest) == 0) {
			if partStart >= 0 {
				cut := pos - len(crlfSuffix(body[partStart:pos]))
				out = append(out, segment{b: body[partStart:cut], part: true})
				last = cut
			}
			if closing {
				out = append(out, segment{b: body[last:]})
				return out, nil
			}
			out = append(out, segment{b: body[last:end]})
			partStart, last = end, end
		}
		pos = end
	}
	return nil, cannot("multipart without its close delimiter")
}

func crlfSuffix(p []byte) []byte {
	switch {
	case bytes.HasSuffix(p, []byte("\r\n")):
		return []byte("\r\n")
	case bytes.HasSuffix(p, []byte("\n")):
		return []byte("\n")
	}
	return nil
}

type field struct {
	name string
	raw  string // the whole field, folded lines and CRLF included
}

// split cuts msg into its header section (with the final line break, not
// the empty line) and its body.
func split(msg []byte) (hdr, body []byte) {
	if bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil, msg[2:]
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2], msg[i+4:]
	}
	return msg, nil
}

// fields cuts a header section into fields, continuation lines included.
func fields(hdr []byte) []field {
	var out []field
	for _, line := range strings.SplitAfter(string(hdr), "\n") {
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].raw += line
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		out = append(out, field{name: strings.TrimSpace(name), raw: line})
	}
	return out
}

func get(fs []field, name string) string {
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			return strings.TrimSpace(unfold(f.raw[len(f.name)+1:]))
		}
	}
	return ""
}

func hasField(fs []field, name string) bool {
	for _, f := range fs {
		if strings.EqualFold(f.name, name) {
			return true
		}
	}
	return false
}

func unfold(s string) string {
	return strings.NewReplacer("\r\n", "", "\n", "").Replace(s)
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
