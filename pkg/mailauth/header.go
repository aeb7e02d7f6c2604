package mailauth

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Header is the Authentication-Results field for r under authservID,
// folded, ending in CRLF.
func (r Results) Header(authservID string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Authentication-Results: %s", authservID)
	item := func(format string, a ...any) { fmt.Fprintf(&b, ";\r\n\t"+format, a...) }
	if r.SPF.Result != "" {
		if r.SPF.Identity != "" && !strings.HasPrefix(r.SPF.Identity, "postmaster@") || r.SPF.Helo == "" {
			item("spf=%s smtp.mailfrom=%s", r.SPF.Result, pvalue(r.SPF.Identity))
		} else {
			item("spf=%s smtp.helo=%s", r.SPF.Result, pvalue(r.SPF.Helo))
		}
	}
	if !r.Checked {
		b.WriteString("\r\n")
		return b.String()
	}
	if len(r.DKIM) == 0 {
		item("dkim=none")
	}
	for _, d := range r.DKIM {
		if d.Domain == "" {
			item("dkim=%s", d.Result)
			continue
		}
		item("dkim=%s header.d=%s", d.Result, pvalue(d.Domain))
		if d.AUID != "" {
			fmt.Fprintf(&b, " header.i=%s", pvalue(d.AUID))
		}
	}
	if r.DMARC.Result != "" {
		item("dmarc=%s", r.DMARC.Result)
		if r.DMARC.Policy != "" {
			fmt.Fprintf(&b, " policy.dmarc=%s", pvalue(r.DMARC.Policy))
		}
		if r.DMARC.From != "" {
			fmt.Fprintf(&b, " header.from=%s", pvalue(r.DMARC.From))
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// pvalue is RFC 8601's pvalue: an addr-spec or token as is, anything else
// as a quoted-string.
func pvalue(s string) string {
	plain := s != ""
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>,;:\"[]/?=`, rune(c))
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// AuthservID returns the authserv-id of an Authentication-Results field's
// value: its first token, after any comments, without a version.
func AuthservID(value string) string {
	s := skipCFWS(value)
	end := strings.IndexAny(s, "; \t\r\n(")
	if end < 0 {
		end = len(s)
	}
	id := s[:end]
	if strings.HasPrefix(id, `"`) {
		// A quoted-string authserv-id (RFC 8601 allows value).
		if j := strings.IndexByte(s[1:], '"'); j >= 0 {
			id = s[1 : j+1]
		}
	}
	return id
}

func skipCFWS(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if !strings.HasPrefix(s, "(") {
			return s
		}
		depth, i := 0, 0
	scan:
		for ; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				if depth--; depth == 0 {
					break scan
				}
			}
		}
		if i >= len(s) {
			return ""
		}
		s = s[i+1:]
	}
}

// Rewrite copies the message in src to dst with every
// Authentication-Results field that carries authservID removed and
// header added after the first field (smtp-bs's own Received, which stays
// first). It returns the number of fields removed.
func Rewrite(dst io.Writer, src io.Reader, authservID, header string) (int, error) {
	f := NewFilter(dst, authservID, header, 1)
	if _, err := io.CopyBuffer(f, src, make([]byte, 32<<10)); err != nil {
		return f.Removed(), err
	}
	err := f.Flush()
	return f.Removed(), err
}

// maxField bounds what a Filter holds of one header field; a longer field
// (far beyond what mail carries) ends the filtering: it and the rest pass
// through as they are.
const maxField = 1 << 20

// Filter is Rewrite as a writer, for a message as it streams in: it
// removes the Authentication-Results fields that carry authservID and
// inserts header after the first skip fields, holding no more than one
// field at a time; past the header it passes everything straight on.
// Flush must be called at the end.
type Filter struct {
	w          io.Writer
	id, header string
	skip       int
	inHeader   bool
	line       []byte // the current line, not yet complete
	field      []byte // the current field, continuation lines included
	removed    int
	err        error
}

// NewFilter returns a Filter writing to w.
func NewFilter(w io.Writer, authservID, header string, skip int) *Filter {
	return &Filter{w: w, id: authservID, header: header, skip: skip, inHeader: true}
}

// Removed is the number of fields removed so far.
func (f *Filter) Removed() int { return f.removed }

func (f *Filter) Write(p []byte) (int, error) {
	n := len(p)
	for f.inHeader && len(p) > 0 && f.err == nil {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.line = append(f.line, p...)
			p = nil
			if len(f.line) > maxField {
				f.giveUp()
			}
			break
		}
		f.line = append(f.line, p[:i+1]...)
		p = p[i+1:]
		l := f.line
		f.line = nil
		f.handle(l)
	}
	if f.err == nil && len(p) > 0 {
		_, f.err = f.w.Write(p)
	}
	if f.err != nil {
		return 0, f.err
	}
	return n, nil
}

func (f *Filter) handle(l []byte) {
	if (l[0] == ' ' || l[0] == '\t') && f.field != nil {
		f.field = append(f.field, l...)
		if len(f.field) > maxField {
			f.giveUp()
		}
		return
	}
	f.flushField()
	if len(bytes.TrimRight(l, "\r\n")) == 0 {
		// The blank line: the header ends here.
		f.insert()
		f.write(l)
		f.inHeader = false
		return
	}
	f.field = append(f.field[:0:0], l...)
}

// flushField writes the field held, unless it is one of ours to remove.
func (f *Filter) flushField() {
	if f.field == nil {
		return
	}
	name, value, _ := strings.Cut(string(f.field), ":")
	if strings.EqualFold(strings.TrimSpace(name), "Authentication-Results") && strings.EqualFold(AuthservID(value), f.id) {
		f.removed++
	} else {
		if f.skip == 0 {
			f.insert()
		}
		f.write(f.field)
		if f.skip > 0 {
			f.skip--
		}
	}
	f.field = nil
}

func (f *Filter) insert() {
	if f.header != "" {
		f.write([]byte(f.header))
		f.header = ""
	}
	f.skip = 0
}

func (f *Filter) write(b []byte) {
	if f.err == nil {
		_, f.err = f.w.Write(b)
	}
}

// giveUp writes what is held and stops filtering.
func (f *Filter) giveUp() {
	f.insert()
	f.write(f.field)
	f.write(f.line)
	f.field, f.line, f.inHeader = nil, nil, false
}

// Flush writes what is held: a header without a blank line after it ends
// with the message.
func (f *Filter) Flush() error {
	if f.inHeader {
		if len(f.line) > 0 {
			l := f.line
			f.line = nil
			f.handle(l)
		}
		f.flushField()
		f.insert()
		f.inHeader = false
	}
	return f.err
}
