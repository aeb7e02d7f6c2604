package dnsbl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Site is one DNSBL or DNSWL entry, in postscreen's notation:
//
//	zone[=filter][*weight]   zen.spamhaus.org*3, list.dnswl.org=127.0.[0..255].[1..3]*-5
//	zone&mask[*weight]       an Exim-style bit mask: every bit of mask set in the answer
//
// A filter is four dot-separated octets, each a number or a bracketed list
// of numbers and ranges ([2;4..7]). The weight defaults to 1; a negative
// weight makes an allow list.
type Site struct {
	Zone    string
	Weight  int
	octets  [4][]span // filter; nil: no filter
	mask    [4]byte   // with hasMask: every bit must be set
	hasMask bool
	text    string
}

type span struct{ lo, hi int }

func (s Site) String() string { return s.text }

// ParseSite parses one entry of [checks.dnsbl] zones.
func ParseSite(text string) (Site, error) {
	s := Site{Weight: 1, text: text}
	rest := strings.TrimSpace(text)
	if i := strings.LastIndexByte(rest, '*'); i >= 0 {
		w, err := strconv.Atoi(rest[i+1:])
		if err != nil || w == 0 || w < -1000 || w > 1000 {
			return s, fmt.Errorf("%q: the weight after * must be a non-zero whole number (e.g. *3 or *-5)", text)
		}
		s.Weight, rest = w, rest[:i]
	}
	if i := strings.IndexAny(rest, "=&"); i >= 0 {
		op, arg := rest[i], rest[i+1:]
		rest = rest[:i]
		if op == '&' {
			a, err := netip.ParseAddr(arg)
			if err != nil || !a.Is4() {
				return s, fmt.Errorf("%q: the mask after & must be an IPv4 address (e.g. &0.0.0.4)", text)
			}
			s.mask, s.hasMask = a.As4(), true
		} else if err := s.parseFilter(arg); err != nil {
			return s, fmt.Errorf("%q: %v", text, err)
		}
	}
	zone := strings.ToLower(strings.TrimSuffix(rest, "."))
	if !validZone(zone) {
		return s, fmt.Errorf("%q: %q is not a DNS zone", text, rest)
	}
	s.Zone = zone
	return s, nil
}

func validZone(z string) bool {
	if z == "" || len(z) > 200 || !strings.Contains(z, ".") {
		return false
	}
	for _, label := range strings.Split(z, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// parseFilter reads d.d.d.d where each d is n or [n;a..b;...].
func (s *Site) parseFilter(f string) error {
	var parts []string
	for f != "" {
		var part string
		if f[0] == '[' {
			end := strings.IndexByte(f, ']')
			if end < 0 {
				return fmt.Errorf("unclosed [ in the filter")
			}
			part, f = f[:end+1], f[end+1:]
		} else {
			end := strings.IndexByte(f, '.')
			if end < 0 {
				end = len(f)
			}
			part, f = f[:end], f[end:]
		}
		parts = append(parts, part)
		if f != "" {
			if f[0] != '.' || len(f) == 1 {
				return fmt.Errorf("the filter must be four octets separated by dots")
			}
			f = f[1:]
		}
	}
	if len(parts) != 4 {
		return fmt.Errorf("the filter must be four octets (e.g. =127.0.0.2 or =127.0.[0..255].[1..3])")
	}
	for i, p := range parts {
		inner, bracket := strings.CutPrefix(p, "[")
		if bracket {
			inner = strings.TrimSuffix(inner, "]")
		}
		for _, item := range strings.Split(inner, ";") {
			lo, hi, isRange := strings.Cut(item, "..")
			if isRange && !bracket {
				return fmt.Errorf("a range must be in brackets: [%s]", item)
			}
			if !isRange {
				hi = lo
			}
			a, err1 := octet(lo)
			b, err2 := octet(hi)
			if err1 != nil || err2 != nil || a > b {
				return fmt.Errorf("%q is not an octet or a range of octets", item)
			}
			s.octets[i] = append(s.octets[i], span{a, b})
		}
	}
	return nil
}

func octet(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 || s != strconv.Itoa(n) {
		return 0, fmt.Errorf("bad octet")
	}
	return n, nil
}

// Matches reports whether an answer of the zone counts for this site.
// Without a filter, any address in 127.0.0.0/8 counts but
// 127.255.255.0/24, which Spamhaus and others answer to say that the
// query itself was refused (a public resolver, over quota): counting it
// would list every client.
func (s Site) Matches(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	switch {
	case s.hasMask:
		for i := range b {
			if b[i]&s.mask[i] != s.mask[i] {
				return false
			}
		}
		return true
	case s.octets[0] != nil:
		for i := range b {
			if !inSpans(int(b[i]), s.octets[i]) {
				return false
			}
		}
		return true
	}
	return IsListing(a)
}

// IsListing reports whether a is an answer that lists a client, rather
// than a DNSBL's error code.
func IsListing(a netip.Addr) bool {
	b := a.As4()
	return a.Is4() && b[0] == 127 && !(b[1] == 255 && b[2] == 255)
}

func inSpans(v int, ss []span) bool {
	for _, s := range ss {
		if v >= s.lo && v <= s.hi {
			return true
		}
	}
	return false
}
