// Package address checks envelope addresses as go-smtp hands them over.
//
// go-smtp has already removed the angle brackets, any source route and the
// quotes of a quoted local part. What is left must be a plain
// local@domain that no downstream MTA can reinterpret: open relays have been
// built from every ambiguity listed in Check (the %-hack, UUCP !-paths,
// quoted local parts holding another @, trailing dots, address literals).
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits from RFC 5321 4.5.3.1, but for the local part: its 64 octets
// are where the RFC also asks for no limit "to the maximum extent
// possible", and SRS, VERP and BATV return addresses run past them. A
// local part is bounded by the path's 256 octets instead, as in Postfix.
const (
	maxLocalPart = maxPath
	maxDomain    = 255
	maxPath      = 256
)

// Error says why an address is refused; Code is the enhanced status detail.
type Error struct {
	Addr string
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("address <%s>: %s", e.Addr, e.Msg) }

// ErrEmpty is returned by Check for the null reverse-path when it is not allowed.
var ErrEmpty = errors.New("address: empty")

// Address is a checked mailbox.
type Address struct {
	Local  string
	Domain string // lower case, no trailing dot
}

// String renders the address with the domain in lower case.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// Check parses addr, a mailbox as go-smtp returns it, and refuses anything
// that could route the mail somewhere other than local@domain.
func Check(addr string) (Address, error) {
	bad := func(msg string) (Address, error) { return Address{}, &Error{Addr: sanitize(addr), Msg: msg} }
	if addr == "" {
		return Address{}, ErrEmpty
	}
	if len(addr) > maxPath {
		return bad("too long")
	}
	if !utf8.ValidString(addr) {
		return bad("not valid UTF-8")
	}
	for _, r := range addr {
		// Unicode too (SMTPUTF8): C1 controls such as U+0085 (NEL) and
		// separators such as U+2028 end lines for some readers of logs
		// and headers; format characters such as U+202E (right-to-left
		// override) and U+200B (zero width space) make an address read
		// as another one.
		if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return bad("contains spaces or control characters")
		}
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return bad("has no domain")
	}
	local, domain := addr[:at], addr[at+1:]
	switch {
	case strings.Contains(local, "@"):
		return bad("local part holds another @ (a quoted route)")
	case strings.Contains(local, "%"):
		return bad("local part holds % (the %-hack routes mail onward)")
	case strings.Contains(local, "!"):
		return bad("local part holds ! (a UUCP path routes mail onward)")
	case strings.ContainsAny(local, `"\()<>[]:;,`):
		return bad("local part holds characters that need quoting")
	case local == "" || len(local) > maxLocalPart:
		return bad("local part is empty or too long")
	case strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, ".."):
		return bad("local part is not a dot-string")
	}
	// Lower case first, then check: a few letters grow when lowered
	// (U+0130 İ is two bytes, its lower case three), and the limits hold
	// for what is stored and sent on. (Domains fold as IDNA does; local
	// parts fold by Lower, ASCII only.)
	domain = strings.ToLower(domain)
	if err := checkDomain(domain); err != nil {
		return bad(err.Error())
	}
	if len(local)+1+len(domain) > maxPath {
		return bad("too long")
	}
	return Address{Local: local, Domain: domain}, nil
}

// checkDomain accepts only a plain host name: no literal, no trailing dot.
func checkDomain(d string) error {
	switch {
	case d == "":
		return errors.New("has no domain")
	case strings.HasPrefix(d, "["):
		return errors.New("address literals are not accepted")
	case strings.HasSuffix(d, "."):
		return errors.New("domain ends with a dot")
	case len(d) > maxDomain:
		return errors.New("domain too long")
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return errors.New("domain has an empty or overlong label")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errors.New("domain label starts or ends with a hyphen")
		}
		for _, r := range label {
			if r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80 {
				continue
			}
			return fmt.Errorf("domain holds %q", r)
		}
	}
	return nil
}

// IsASCII reports whether s needs SMTPUTF8 to be carried.
func IsASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// sanitize makes an address safe to echo in a reply or a log line.
func sanitize(s string) string {
	if len(s) > maxPath {
		s = s[:maxPath]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return '?'
		}
		return r
	}, s)
}

// Lower folds ASCII letters to lower case and leaves every other byte
// alone. It is the one case rule for local parts, the same as
// EqualFold's: strings.ToLower maps U+0130 İ to "i", so "ALİCE"
// would reach alice's mailbox and "İNFO" expand the info alias.
func Lower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// EqualFold reports whether a and b are equal with ASCII letters folded
// to one case, and nothing else. strings.EqualFold also folds non-ASCII
// letters that look nothing alike in a domain: "ſ" (U+017F) matches "s"
// and the Kelvin sign matches "k", so "local.teſt" would pass for
// "local.test" in the relay check while routing, which lower-cases,
// would treat it as another domain.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
