package submit

import (
	"bytes"
	"strings"
)

// AddressFields are the header fields whose addresses the sendmail front
// qualifies: cron writes "From: root (Cron Daemon)" and scripts "To: bob",
// which a remote reader cannot answer.
var AddressFields = []string{"From", "Sender", "Reply-To", "To", "Cc", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc"}

// QualifyFields appends @host to the addresses without a domain in the
// address fields of m, as sendmail does with $j. A field it cannot read
// with confidence (a group, unbalanced quotes or brackets) is left alone.
//
// The field keeps its folding: a To: of a hundred names unfolded would be
// one line over RFC 5322's 998 octets. Where the added "@host" makes a
// line longer than 78, the field is folded before the next address.
func QualifyFields(m *Message, host string) {
	for i, f := range m.Header {
		for _, name := range AddressFields {
			if !strings.EqualFold(f.Name, name) {
				continue
			}
			colon := bytes.IndexByte(f.Raw, ':')
			body := strings.TrimSuffix(string(f.Raw[colon+1:]), "\r\n")
			if elems, ok := qualifyElems(body, host); ok {
				m.Header[i].Raw = []byte(string(f.Raw[:colon+1]) + fold(elems, colon+1) + "\r\n")
			}
		}
	}
}

// QualifyList qualifies each address of an address-list header value:
// "root (Cron Daemon)" becomes "root@host (Cron Daemon)", "Ann <ann>"
// becomes "Ann <ann@host>". It reports whether it changed anything.
func QualifyList(v, host string) (string, bool) {
	elems, changed := qualifyElems(v, host)
	if !changed {
		return v, false
	}
	return strings.Join(elems, ","), true
}

// qualifyElems splits v at its commas and qualifies each address, each
// element keeping its spaces and folds; changed is false when it left
// v alone.
func qualifyElems(v, host string) (elems []string, changed bool) {
	elems, ok := splitList(v)
	if !ok {
		return nil, false
	}
	for i, e := range elems {
		if q, ok := qualifyElem(e, host); ok {
			elems[i], changed = q, true
		}
	}
	return elems, changed
}

// maxHeaderLine is where fold breaks a line (RFC 5322 2.1.1's "SHOULD"
// of 78 characters, without the CRLF).
const maxHeaderLine = 78

// fold joins elems with commas as they were, and folds before an element
// (CRLF, then its leading space or one added) when it would take its
// line past maxHeaderLine; col is the length of the line before elems.
// An element already starting on a new line, or a first one, is kept
// where it is; an element alone may still be longer.
func fold(elems []string, col int) string {
	var b strings.Builder
	line := col
	for i, e := range elems {
		first := e
		if k := strings.Index(e, "\r\n"); k >= 0 {
			first = e[:k]
		}
		comma := 0
		if i < len(elems)-1 {
			comma = 1
		}
		if i > 0 && !strings.HasPrefix(e, "\r\n") && line+len(first)+comma > maxHeaderLine {
			b.WriteString("\r\n")
			if e == "" || (e[0] != ' ' && e[0] != '\t') {
				b.WriteByte(' ')
			}
			line = 0
		}
		b.WriteString(e)
		if k := strings.LastIndex(e, "\r\n"); k >= 0 {
			line = len(e) - k - 2
		} else {
			line += len(e)
		}
		if comma == 1 {
			b.WriteByte(',')
			line++
		}
	}
	return b.String()
}

// splitList splits v at the commas outside quotes, comments and angle
// brackets; ok is false for a group (a ':' outside them) or an unbalanced
// quote, comment or bracket.
func splitList(v string) ([]string, bool) {
	var out []string
	quoted, depth, angle, start := false, 0, false, 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && (quoted || depth > 0):
			i++
		case quoted:
			quoted = c != '"'
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				return nil, false
			}
			depth--
		case depth > 0:
		case c == '"':
			quoted = true
		case c == '<':
			if angle {
				return nil, false
			}
			angle = true
		case c == '>':
			if !angle {
				return nil, false
			}
			angle = false
		case angle:
		case c == ':' || c == ';':
			return nil, false
		case c == ',':
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	if quoted || depth > 0 || angle {
		return nil, false
	}
	return append(out, v[start:]), true
}

// qualifyElem qualifies one address of a list (already known balanced).
func qualifyElem(e, host string) (string, bool) {
	// name-addr: the address in angle brackets.
	if lt := topLevel(e, '<'); lt >= 0 {
		gt := lt + strings.IndexByte(e[lt:], '>')
		addr := e[lt+1 : gt]
		if strings.TrimSpace(addr) == "" || hasDomain(addr) || strings.HasPrefix(strings.TrimSpace(addr), "@") {
			return e, false
		}
		end := lt + 1 + len(strings.TrimRightFunc(addr, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }))
		return e[:end] + "@" + host + e[end:], true
	}
	// addr-spec, perhaps with comments: one word outside them.
	inComment := make([]bool, len(e))
	quoted, depth := false, 0
	for i := 0; i < len(e); i++ {
		c := e[i]
		switch {
		case depth > 0:
			inComment[i] = true
			switch c {
			case '\\':
				if i+1 < len(e) {
					i++
					inComment[i] = true
				}
			case '(':
				depth++
			case ')':
				depth--
			}
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case c == '(':
			depth, inComment[i] = 1, true
		case c == '"':
			quoted = true
		}
	}
	var spec strings.Builder
	last := -1
	for i := 0; i < len(e); i++ {
		if inComment[i] {
			continue
		}
		spec.WriteByte(e[i])
		if !isSpace(e[i]) {
			last = i
		}
	}
	word := strings.TrimSpace(spec.String())
	// Two words are a display name without <>: not ours to guess.
	if word == "" || strings.ContainsAny(word, " \t") || hasDomain(word) {
		return e, false
	}
	return e[:last+1] + "@" + host + e[last+1:], true
}

// topLevel is the index of c outside quotes and comments, or -1.
func topLevel(s string, c byte) int {
	quoted, depth := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && (quoted || depth > 0):
			i++
		case quoted:
			quoted = s[i] != '"'
		case s[i] == '(':
			depth++
		case s[i] == ')':
			depth--
		case depth > 0:
		case s[i] == '"':
			quoted = true
		case s[i] == c:
			return i
		}
	}
	return -1
}

// isSpace is a space, a tab or a fold's CRLF: "@host" goes before them.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
