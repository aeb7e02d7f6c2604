package tcpwrap

// This file holds Go versions of the C library routines whose exact
// behaviour decides libwrap's verdicts: glibc's inet_aton, inet_pton,
// inet_ntop, strtol and scanf number conversions, and libwrap's own
// split_at, dot_quad_addr and cidr_mask_addr. They work on bytes in the C
// ("POSIX") locale, as tcpd does: it never calls setlocale.

import (
	"math"
	"net"
	"strings"
)

// inaddrNone is INADDR_NONE, the "bad address" value of inet_addr, which
// is also the value of the valid address 255.255.255.255: libwrap treats
// that address as bad wherever it uses inet_addr.
const inaddrNone = 0xffffffff

// isSpace is isspace(3) in the C locale. Bytes >= 0x80 are not spaces.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// toUpper is toupper(3) in the C locale: ASCII letters only.
func toUpper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// equalFold is strcasecmp(a, b) == 0 in the C locale. strings.EqualFold
// would also fold non-ASCII letters (the Kelvin sign matches "k"), which
// libwrap does not.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if toUpper(a[i]) != toUpper(b[i]) {
			return false
		}
	}
	return true
}

// hasPrefixFold is strncasecmp(s, prefix, len(prefix)) == 0.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && equalFold(s[:len(prefix)], prefix)
}

// cstr cuts b at its first NUL byte, as C string functions see it.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// splitAt is libwrap's split_at: it splits s at the first delim that is
// not inside square brackets (Debian's IPv6 patch made it bracket-aware, so
// "[::1]" survives splitting at ':'). The bracket depth is a plain counter
// that a stray ']' can make negative, and then no delimiter is found.
func splitAt(s string, delim byte) (before, after string, ok bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		default:
			if depth == 0 && s[i] == delim {
				return s[:i], s[i+1:], true
			}
		}
	}
	return s, "", false
}

// strtok splits s into the tokens strtok(3) would return for the given
// separator set. Pre-splitting is equivalent to libwrap's lazy strtok
// calls: matching functions only ever shorten the token they are given.
func strtok(s, sep string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r < 0x80 && strings.IndexByte(sep, byte(r)) >= 0
	})
}

// strspn returns the length of the prefix of s made of bytes in set.
func strspn(s, set string) int {
	i := 0
	for i < len(s) && strings.IndexByte(set, s[i]) >= 0 {
		i++
	}
	return i
}

// strcspn returns the length of the prefix of s made of bytes not in set.
func strcspn(s, set string) int {
	i := 0
	for i < len(s) && strings.IndexByte(set, s[i]) < 0 {
		i++
	}
	return i
}

// parseUint is the digit loop shared by strtoul and strtol: it reads digits
// of the given base (0 means C's automatic 0x/0 prefixes) from s, which
// must not start with a sign or space. It returns the value saturated at
// math.MaxUint64, whether it overflowed, and how many bytes it used (0 when
// there is no digit at all).
func parseUint(s string, base int) (v uint64, overflow bool, n int) {
	i := 0
	if base == 0 || base == 16 {
		if len(s) >= 3 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && hexDigit(s[2]) >= 0 {
			base, i = 16, 2
		} else if base == 0 {
			if len(s) > 0 && s[0] == '0' {
				base = 8
			} else {
				base = 10
			}
		}
	}
	start := i
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || d >= base {
			break
		}
		if v > (math.MaxUint64-uint64(d))/uint64(base) {
			overflow = true
		}
		if !overflow {
			v = v*uint64(base) + uint64(d)
		}
	}
	if i == start {
		return 0, false, 0
	}
	if overflow {
		v = math.MaxUint64
	}
	return v, overflow, i
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// strtol is strtol(s, NULL, base) on a 64-bit machine: leading spaces, an
// optional sign, digits, anything after them ignored, overflow clamped.
func strtol(s string, base int) int64 {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	v, overflow, n := parseUint(s[i:], base)
	if n == 0 {
		return 0
	}
	if neg {
		if overflow || v > 1<<63 {
			return math.MinInt64
		}
		return -int64(v)
	}
	if overflow || v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// scanNumber is glibc sscanf(s, "%d%c") (signed) or "%u%c"/"%o%c"
// (unsigned, base 10 or 8): it returns how many conversions succeeded (0, 1
// or 2; EOF counts as 0 since every caller only tests for 1) and the low 32
// bits of the number, which is how glibc stores a long into an int.
func scanNumber(s string, base int, signed bool) (count int, value uint32) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	v, overflow, n := parseUint(s[i:], base)
	if n == 0 {
		return 0, 0
	}
	i += n
	if signed {
		// strtol semantics, then truncation to int.
		var l int64
		switch {
		case neg && (overflow || v > 1<<63):
			l = math.MinInt64
		case neg:
			l = -int64(v)
		case overflow || v > math.MaxInt64:
			l = math.MaxInt64
		default:
			l = int64(v)
		}
		value = uint32(l)
	} else {
		// strtoul semantics: a minus sign negates the unsigned value.
		if overflow {
			v = math.MaxUint64
		} else if neg {
			v = -v
		}
		value = uint32(v)
	}
	if i < len(s) {
		return 2, value
	}
	return 1, value
}

// inetAton is glibc's inet_aton: parts in C notation (0x hex, 0 octal),
// one to four of them, each bounded as the classic forms a, a.b, a.b.c and
// a.b.c.d allow. Unless exact is set, anything after a trailing space is
// ignored (glibc accepts "1.2.3.4 junk"); getaddrinfo's numeric check
// (inet_aton_exact) wants the string to end there.
func inetAton(s string, exact bool) (uint32, bool) {
	var parts [4]uint32
	np := 0
	i := 0
	var val uint64
	for {
		if i >= len(s) || !isDigit(s[i]) {
			return 0, false
		}
		v, overflow, n := parseUint(s[i:], 0)
		if overflow || v > 0xffffffff {
			return 0, false
		}
		val = v
		i += n
		if i < len(s) && s[i] == '.' {
			if np > 2 || val > 0xff {
				return 0, false
			}
			parts[np] = uint32(val)
			np++
			i++
			continue
		}
		break
	}
	if i < len(s) {
		if exact || s[i] >= 0x80 || !isSpace(s[i]) {
			return 0, false
		}
	}
	max := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	if val > max[np] {
		return 0, false
	}
	addr := uint32(val)
	for k := 0; k < np; k++ {
		addr |= parts[k] << (24 - 8*uint(k))
	}
	return addr, true
}

// dotQuadAddr is libwrap's dot_quad_addr: inet_addr, but only for strings
// with exactly four runs of non-dot characters (so "10.1" is refused). Like
// inet_addr it returns inaddrNone both for errors and for 255.255.255.255.
func dotQuadAddr(s string) uint32 {
	runs, inRun := 0, false
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			inRun = false
		} else if !inRun {
			inRun = true
			runs++
		}
	}
	if runs != 4 {
		return inaddrNone
	}
	a, ok := inetAton(s, false)
	if !ok {
		return inaddrNone
	}
	return a
}

// cidrMaskAddr is Debian's cidr_mask_addr: the netmask for a "/len"
// suffix, or 0 (not inaddrNone) when len is outside 1..32. The length is
// the low 32 bits of strtol's result, as the C code compares an int.
func cidrMaskAddr(s string) uint32 {
	n := int32(strtol(s, 10))
	if uint32(n-1) > 31 {
		return 0
	}
	return 0xffffffff << uint(32-n)
}

// inetPton4 is glibc's strict inet_pton for IPv4: four decimal parts, no
// leading zeros, nothing else.
func inetPton4(s string) ([4]byte, bool) {
	var out [4]byte
	sawDigit := false
	octets := 0
	k := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			nv := uint(out[k])*10 + uint(c-'0')
			if sawDigit && out[k] == 0 {
				return out, false
			}
			if nv > 255 {
				return out, false
			}
			out[k] = byte(nv)
			if !sawDigit {
				octets++
				if octets > 4 {
					return out, false
				}
				sawDigit = true
			}
		case c == '.' && sawDigit:
			if octets == 4 {
				return out, false
			}
			k++
			out[k] = 0
			sawDigit = false
		default:
			return out, false
		}
	}
	if octets < 4 {
		return out, false
	}
	return out, true
}

// inetPton6 is glibc's inet_pton for IPv6.
func inetPton6(s string) ([16]byte, bool) {
	var tmp [16]byte
	if len(s) == 0 {
		return tmp, false
	}
	i := 0
	if s[0] == ':' {
		i++
		if i == len(s) || s[i] != ':' {
			return tmp, false
		}
	}
	tp := 0
	colonp := -1
	curtok := i
	xdigits := 0
	val := 0
	for i < len(s) {
		ch := s[i]
		i++
		if d := hexDigit(ch); d >= 0 {
			if xdigits == 4 {
				return tmp, false
			}
			val = val<<4 | d
			xdigits++
			continue
		}
		if ch == ':' {
			curtok = i
			if xdigits == 0 {
				if colonp >= 0 {
					return tmp, false
				}
				colonp = tp
				continue
			} else if i == len(s) {
				return tmp, false
			}
			if tp+2 > 16 {
				return tmp, false
			}
			tmp[tp] = byte(val >> 8)
			tmp[tp+1] = byte(val)
			tp += 2
			xdigits = 0
			val = 0
			continue
		}
		if ch == '.' && tp+4 <= 16 {
			if v4, ok := inetPton4(s[curtok:]); ok {
				copy(tmp[tp:], v4[:])
				tp += 4
				xdigits = 0
				break
			}
		}
		return tmp, false
	}
	if xdigits > 0 {
		if tp+2 > 16 {
			return tmp, false
		}
		tmp[tp] = byte(val >> 8)
		tmp[tp+1] = byte(val)
		tp += 2
	}
	if colonp >= 0 {
		if tp == 16 {
			return tmp, false
		}
		n := tp - colonp
		copy(tmp[16-n:], tmp[colonp:tp])
		for k := colonp; k < 16-n; k++ {
			tmp[k] = 0
		}
		tp = 16
	}
	if tp != 16 {
		return tmp, false
	}
	return tmp, true
}

// parseNumericV6 is what getaddrinfo(s, AF_INET6, AI_NUMERICHOST) accepts:
// an IPv6 literal with an optional %scope, where the scope is a decimal
// number or, for link-local addresses, the name of an existing interface.
// libwrap compares only the address bytes, so the scope is not returned.
func parseNumericV6(s string) ([16]byte, bool) {
	addr, scope, hasScope := strings.Cut(s, "%")
	a, ok := inetPton6(addr)
	if !ok {
		return a, false
	}
	if !hasScope {
		return a, true
	}
	linkLocal := (a[0] == 0xfe && a[1]&0xc0 == 0x80) || (a[0] == 0xff && (a[1]&0x0f == 1 || a[1]&0x0f == 2))
	if linkLocal && scope != "" {
		if _, err := net.InterfaceByName(scope); err == nil {
			return a, true
		}
	}
	if scope == "" || !isDigit(scope[0]) {
		return a, false
	}
	v, overflow, n := parseUint(scope, 10)
	if overflow || n != len(scope) || v > math.MaxUint32 {
		return a, false
	}
	return a, true
}

// isNumericHost reports whether getaddrinfo would take name for a numeric
// address of either family. libwrap refuses such a name from a reverse
// lookup (it calls the host "paranoid"): a PTR record that reads like an
// address must not be able to satisfy an address pattern.
func isNumericHost(name string) bool {
	if _, ok := inetAton(name, true); ok {
		return true
	}
	_, ok := parseNumericV6(name)
	return ok
}

// inetNtop6 is glibc's inet_ntop for IPv6, whose text is what libwrap
// matches address patterns against: the longest run (first on a tie) of
// two or more zero groups becomes "::", and the IPv4-compatible and
// IPv4-mapped forms end in dotted quad.
func inetNtop6(a [16]byte) string {
	var words [8]int
	for i := 0; i < 16; i += 2 {
		words[i/2] = int(a[i])<<8 | int(a[i+1])
	}
	bestBase, bestLen := -1, 0
	curBase, curLen := -1, 0
	for i := 0; i < 8; i++ {
		if words[i] == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
		} else if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	var b strings.Builder
	for i := 0; i < 8; i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				b.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			b.WriteByte(':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && words[5] == 0xffff)) {
			b.WriteString(net.IPv4(a[12], a[13], a[14], a[15]).String())
			return b.String()
		}
		const hexd = "0123456789abcdef"
		w := words[i]
		started := false
		for shift := 12; shift >= 0; shift -= 4 {
			d := (w >> uint(shift)) & 0xf
			if d != 0 || started || shift == 0 {
				b.WriteByte(hexd[d])
				started = true
			}
		}
	}
	if bestBase != -1 && bestBase+bestLen == 8 {
		b.WriteByte(':')
	}
	return b.String()
}
