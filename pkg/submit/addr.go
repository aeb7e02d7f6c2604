package submit

import (
	"fmt"
	"mime"
	"smtp-bs/pkg/address"
	"strings"
)

// ParseList returns the addresses of an address list (RFC 5322 3.4), as
// sendmail reads them from To:, Cc:, Bcc: and its arguments, leniently:
//
//	root                          an unqualified name, as cron writes
//	Joe Q. <joe@example.org>      the address between the angle brackets
//	joe@example.org (Joe Q.)      comments dropped
//	"a b"@example.org             a quoted local part kept as written
//	friends: a@x, b@y;            a group's members
//	undisclosed-recipients:;      an empty group: nothing
//
// Whitespace outside quotes is dropped (it is folding or CFWS). A source
// route (<@a,@b:user@c>) is reduced to its mailbox. An unbalanced quote,
// comment or angle bracket is an error.
func ParseList(s string) ([]string, error) {
	var (
		addrs   []string
		cur     strings.Builder // the element, outside comments and angle brackets
		angle   strings.Builder // what is between < and >
		inAngle bool
		sawAng  bool
		quoted  bool
		literal bool // inside a domain literal [...]
		depth   int  // comment nesting
	)
	bad := false
	flush := func() {
		a := cur.String()
		if sawAng {
			a = angle.String()
			if strings.HasPrefix(a, "@") {
				if i := strings.IndexByte(a, ':'); i >= 0 {
					a = a[i+1:]
				}
			}
		}
		if a != "" {
			addrs = append(addrs, a)
		}
		cur.Reset()
		angle.Reset()
		sawAng = false
	}
	dst := func() *strings.Builder {
		if inAngle {
			return &angle
		}
		return &cur
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case depth > 0:
			switch c {
			case '\\':
				i++
			case '(':
				depth++
			case ')':
				depth--
			}
		case c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7f:
			bad = true
		case quoted:
			if c == '\r' || c == '\n' {
				bad = true
			}
			dst().WriteByte(c)
			switch c {
			case '\\':
				if i+1 < len(s) {
					i++
					if s[i] < 0x20 || s[i] == 0x7f {
						bad = true
					}
					dst().WriteByte(s[i])
				}
			case '"':
				quoted = false
			}
		case literal:
			// A domain literal is one word: folding white space ends it
			// nowhere, and a line break inside it is damage.
			if c == '\r' || c == '\n' {
				bad = true
			}
			dst().WriteByte(c)
			literal = c != ']'
		case c == '"':
			quoted = true
			dst().WriteByte(c)
		case c == '[':
			literal = true
			dst().WriteByte(c)
		case c == '(':
			depth++
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case inAngle:
			if c == '>' {
				inAngle = false
			} else if c == '<' {
				return nil, fmt.Errorf("%q: a < inside <...>", s)
			} else {
				angle.WriteByte(c)
			}
		case c == '<':
			inAngle, sawAng = true, true
			angle.Reset()
		case c == '>':
			return nil, fmt.Errorf("%q: a > without <", s)
		case c == ':':
			// A group's display name ends here: what came before is no
			// address.
			cur.Reset()
		case c == ',' || c == ';':
			flush()
		default:
			cur.WriteByte(c)
		}
	}
	switch {
	case bad:
		return nil, fmt.Errorf("%q: a control character in an address", s)
	case quoted:
		return nil, fmt.Errorf("%q: an unclosed quote", s)
	case literal:
		return nil, fmt.Errorf("%q: an unclosed [", s)
	case depth > 0:
		return nil, fmt.Errorf("%q: an unclosed comment", s)
	case inAngle:
		return nil, fmt.Errorf("%q: an unclosed <", s)
	}
	flush()
	return addrs, nil
}

// Qualify appends @host to an address without a domain, as sendmail does
// with $j: "root" becomes "root@host.example".
func Qualify(addr, host string) string {
	if addr == "" || hasDomain(addr) {
		return addr
	}
	return addr + "@" + host
}

// hasDomain reports whether addr has an @ outside a quoted local part.
func hasDomain(addr string) bool {
	quoted := false
	for i := 0; i < len(addr); i++ {
		switch addr[i] {
		case '\\':
			i++
		case '"':
			quoted = !quoted
		case '@':
			if !quoted {
				return true
			}
		}
	}
	return false
}

// isASCII reports whether s needs no SMTPUTF8.

// dedupKey compares addresses with the domain in any case, as SMTP does.
func dedupKey(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i] + "@" + strings.ToLower(addr[i+1:])
	}
	return addr
}

// FormatAddress renders a From: value: the address alone, or the display
// name (quoted where it holds specials, RFC 2047-encoded where it is not
// ASCII) and the address in angle brackets.
func FormatAddress(name, addr string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "" {
		return addr
	}
	return encodeName(name) + " <" + addr + ">"
}

func encodeName(name string) string {
	if !address.IsASCII(name) {
		return mime.QEncoding.Encode("utf-8", name)
	}
	if !strings.ContainsAny(name, `()<>[]:;@\,."`) {
		return name
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}
