package mailauth

import (
	"bufio"
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
	br := bufio.NewReaderSize(src, 32<<10)
	bw := bufio.NewWriterSize(dst, 32<<10)
	removed, first := 0, true
	var field []byte // the field being read, its continuation lines included
	flush := func() error {
		if field == nil {
			return nil
		}
		name, value, _ := strings.Cut(string(field), ":")
		if strings.EqualFold(strings.TrimSpace(name), "Authentication-Results") && strings.EqualFold(AuthservID(value), authservID) {
			removed++
		} else if _, err := bw.Write(field); err != nil {
			return err
		}
		if first {
			first = false
			if _, err := bw.WriteString(header); err != nil {
				return err
			}
		}
		field = nil
		return nil
	}
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line over 32 KiB: no header we look for; copy it as is.
			if err := flush(); err != nil {
				return removed, err
			}
			if _, err := bw.Write(line); err != nil {
				return removed, err
			}
			continue
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && field != nil {
			field = append(field, line...)
		} else {
			if err := flush(); err != nil {
				return removed, err
			}
			if len(line) == 0 || line[0] == '\r' || line[0] == '\n' || err != nil {
				// The end of the header: the body follows as it is.
				if first {
					bw.WriteString(header)
					first = false
				}
				bw.Write(line)
				if _, err := io.Copy(bw, br); err != nil {
					return removed, err
				}
				return removed, bw.Flush()
			}
			field = append([]byte(nil), line...)
		}
		if err != nil {
			break
		}
	}
	if err := flush(); err != nil {
		return removed, err
	}
	return removed, bw.Flush()
}
