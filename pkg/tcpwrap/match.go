package tcpwrap

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// listSep is the separator set of daemon and client lists.
const listSep = ", \t\r\n"

// maxHostfiles bounds how many "/path" pattern files one check opens.
// libwrap has no such limit of its own: it runs out of file descriptors
// (or stack) somewhere past a thousand nested files.
const maxHostfiles = 1000

// maxHostfileToken is the longest pattern libwrap can read from a "/path"
// file: fscanf("%s") into a BUFSIZ (8192) buffer with no width limit.
const maxHostfileToken = 8191

// listMatch is list_match: the list matches when some element before the
// first EXCEPT matches and the rest after that EXCEPT (itself a list,
// possibly with EXCEPTs: "a EXCEPT b EXCEPT c" is "a EXCEPT (b EXCEPT c)")
// does not. It is written as a loop over the nesting levels, each of
// which flips the result, so a line full of EXCEPTs cannot recurse deeply.
func (c *checker) listMatch(list string, match func(string) bool) bool {
	toks := strtok(list, listSep)
	negate := false
	i := 0
	for {
		found := false
		for ; i < len(toks); i++ {
			if equalFold(toks[i], "EXCEPT") {
				break
			}
			if match(toks[i]) {
				found = true
				break
			}
		}
		if !found {
			return negate
		}
		for i++; i < len(toks) && !equalFold(toks[i], "EXCEPT"); i++ {
		}
		if i >= len(toks) {
			return !negate
		}
		negate = !negate
		i++
	}
}

// serverMatch is server_match: "daemon" or "daemon@host", where host is
// matched against the server endpoint. The '@' is looked for from the
// second byte on, so "@x" is a daemon named "@x".
func (c *checker) serverMatch(tok string) bool {
	if c.stop != "" {
		return false
	}
	daemon, host, ok := splitAt(tok[1:], '@')
	if !ok {
		return c.daemonOrPortMatch(tok)
	}
	return c.daemonOrPortMatch(tok[:1+len(daemon)]) && c.hostMatch(host, &c.server)
}

// daemonOrPortMatch is Debian's daemon_or_port_match: a pattern that
// scanf reads as one unsigned number up to 65535 is a server port.
func (c *checker) daemonOrPortMatch(tok string) bool {
	if n, port := scanNumber(tok, 10, false); n == 1 && port <= 0xffff {
		return c.server.has && uint32(c.server.port) == port
	}
	return c.stringMatch(tok, c.daemon)
}

// clientMatch is client_match: "host" or "user@host". The host part is
// matched first, so the user is only looked at when the host matches.
func (c *checker) clientMatch(tok string) bool {
	if c.stop != "" {
		return false
	}
	user, host, ok := splitAt(tok[1:], '@')
	if !ok {
		return c.hostMatch(tok, &c.client)
	}
	return c.hostMatch(host, &c.client) && c.stringMatch(tok[:1+len(user)], c.user)
}

// hostMatch is host_match: netgroups, pattern files, KNOWN, LOCAL,
// net/mask, and otherwise a string pattern tried on the address and then,
// unless the pattern is made only of digits, dots and slashes, on the name.
// It looks the name up only on that last path, for LOCAL, KNOWN and
// netgroups.
func (c *checker) hostMatch(tok string, h *endpoint) bool {
	if c.stop != "" {
		return false
	}
	switch {
	case strings.HasPrefix(tok, "@"):
		// A NIS netgroup. libwrap asks innetgr(3), after looking the
		// name up; smtp-bs has no NIS client, so a netgroup never
		// matches, as on a system without NIS.
		h.hostname()
		return false
	case strings.HasPrefix(tok, "/"):
		return c.hostfileMatch(tok, h)
	case equalFold(tok, "KNOWN"):
		name := h.hostname()
		return !equalFold(h.hostaddr(), unknown) && hostnameKnown(name)
	case equalFold(tok, "LOCAL"):
		name := h.hostname()
		return !strings.Contains(name, ".") && hostnameKnown(name)
	}
	if net, mask, ok := splitAt(tok, '/'); ok {
		return maskedMatch(net, mask, h.hostaddr())
	}
	if c.stringMatch(tok, h.hostaddr()) {
		return true
	}
	if strspn(tok, "01234567890./") == len(tok) {
		return false // an address pattern: never tried on the name
	}
	if !c.opts.libwrapLookups && len(tok) >= 2 && tok[0] == '[' && tok[len(tok)-1] == ']' && !strings.ContainsAny(tok, "*?") {
		// libwrap looks the name up here too, only to find that it
		// is not an IPv6 literal (a believed name never is). Skipping
		// that keeps rule sets of addresses free of DNS; the verdict
		// is the same. Only a later %h, %c, %H or %s could tell: they
		// show the name only once something has looked it up.
		return false
	}
	return c.stringMatch(tok, h.hostname())
}

// stringMatch is string_match, the matcher for daemons, users, names and
// addresses alike. Its order matters: wildcards first, then ".suffix",
// ALL, KNOWN, "prefix.", "[ipv6]", and finally an exact, case-insensitive
// comparison. A subject "::ffff:a.b.c.d" is first cut to "a.b.c.d".
func (c *checker) stringMatch(tok, s string) bool {
	if hasPrefixFold(s, "::ffff:") && dotQuadAddr(s[7:]) != inaddrNone {
		s = s[7:]
	}
	if strings.ContainsAny(tok, "*?") {
		return wildcardMatch(s, tok)
	}
	if strings.HasPrefix(tok, ".") {
		n := len(s) - len(tok)
		return n > 0 && equalFold(tok, s[n:])
	}
	if equalFold(tok, "ALL") {
		return true
	}
	if equalFold(tok, "KNOWN") {
		return !equalFold(s, unknown)
	}
	if tok == "" {
		// Only "user@" or "daemon@" leave an empty host pattern; the C
		// code then reads the NUL that split_at left before it.
		return s == ""
	}
	last := tok[len(tok)-1]
	if last == '.' {
		return hasPrefixFold(s, tok)
	}
	if last == ']' && tok[0] == '[' {
		pat, ok := parseNumericV6(tok[1 : len(tok)-1])
		if !ok {
			return false
		}
		addr, ok := parseNumericV6(s)
		return ok && pat == addr
	}
	return equalFold(tok, s)
}

// maskedMatch is Debian's net/mask matching: "n.n.n.n/m.m.m.m" and
// "n.n.n.n/len" for IPv4 (a net with host bits set never matches) and
// "[v6net]/len" for IPv6 (host bits are ignored). An IPv4 client never
// matches an IPv6 pattern and vice versa.
func maskedMatch(net, mask, addr string) bool {
	if maskedMatch4(net, mask, addr) {
		return true
	}
	if hasPrefixFold(addr, "::ffff:") && dotQuadAddr(addr[7:]) != inaddrNone {
		return maskedMatch4(net, mask, addr[7:])
	}
	a, ok := parseNumericV6(addr)
	if !ok {
		return false
	}
	if len(net) < 2 || net[0] != '[' || net[len(net)-1] != ']' {
		return false
	}
	n, ok := parseNumericV6(net[1 : len(net)-1])
	if !ok {
		return false
	}
	bits := uint32(int32(strtol(mask, 10)))
	if bits > 128 {
		return false
	}
	for i := 0; bits > 0; i++ {
		m := byte(0xff)
		if bits < 8 {
			m = ^byte(0xff >> bits)
			bits = 0
		} else {
			bits -= 8
		}
		if a[i]&m != n[i]&m {
			return false
		}
	}
	return true
}

// maskedMatch4 is masked_match4. 255.255.255.255 is unusable everywhere
// here (it is inet_addr's error value), and a mask that is not a dotted
// quad is read as a prefix length 1..32.
func maskedMatch4(net, mask, addr string) bool {
	a := dotQuadAddr(addr)
	if a == inaddrNone {
		return false
	}
	n := dotQuadAddr(net)
	if n == inaddrNone {
		return false
	}
	m := dotQuadAddr(mask)
	if m == inaddrNone {
		if m = cidrMaskAddr(mask); m == 0 {
			return false
		}
	}
	return a&m == n
}

// wildcardMatch is match_pattern_ylo (from Tatu Ylonen's ssh): '*' and
// '?' over the whole string, ASCII case folded. Its quirks are kept: a '*'
// followed by '*' or '?' needs at least one more character ("a**" does not
// match "a"). The C version backtracks without limit; results are
// memoized here so a pattern full of stars cannot take exponential time.
func wildcardMatch(s, pat string) bool {
	w := ylo{s: s, p: pat}
	return w.run(0, 0)
}

type ylo struct {
	s, p string
	// memo holds the result of each (si, pi) tried: 0 unknown, 1 no,
	// 2 yes. Subjects are at most 127 bytes and words at most 8191, so it
	// stays around a megabyte at worst; it is only made on recursion.
	memo []int8
}

func (w *ylo) match(si, pi int) bool {
	if w.memo == nil {
		w.memo = make([]int8, (len(w.s)+1)*(len(w.p)+1))
	}
	k := si*(len(w.p)+1) + pi
	if r := w.memo[k]; r != 0 {
		return r == 2
	}
	r := w.run(si, pi)
	w.memo[k] = 1
	if r {
		w.memo[k] = 2
	}
	return r
}

func (w *ylo) run(si, pi int) bool {
	s, p := w.s, w.p
	for {
		if pi == len(p) {
			return si == len(s)
		}
		if p[pi] == '*' {
			pi++
			if pi == len(p) {
				return true
			}
			if p[pi] != '?' && p[pi] != '*' {
				if si == len(s) {
					return false
				}
				lit := toUpper(p[pi])
				pi++
				for si < len(s) {
					ch := s[si]
					si++
					if toUpper(ch) == lit && w.match(si, pi) {
						return true
					}
				}
				return false
			}
			if si == len(s) {
				return false
			}
			for {
				if w.match(si, pi) {
					return true
				}
				si++
				if si == len(s) {
					return false
				}
			}
		}
		if si == len(s) {
			return false
		}
		if p[pi] != '?' && toUpper(p[pi]) != toUpper(s[si]) {
			return false
		}
		si++
		pi++
	}
}

// hostfileMatch is Debian's "/path" pattern: the host matches when any
// whitespace-separated word of the file matches it as a host pattern
// (words may themselves be "/path" patterns; commas and '#' are not
// special there). A missing or unreadable file matches nothing.
//
// A file that leads back to itself makes libwrap recurse until it runs out
// of stack and crashes, so the client gets no service: that fails closed
// here. A file already read for the same endpoint is not read again: its
// answer cannot have changed.
func (c *checker) hostfileMatch(path string, h *endpoint) bool {
	key := seenKey{path, h}
	switch c.seen[key] {
	case fileOpen:
		c.stop = fmt.Sprintf("pattern file %s leads back to itself (libwrap would recurse until it crashes)", path)
		return false
	case fileNoMatch:
		return false
	case fileMatch:
		return true
	}
	if c.hostfiles >= maxHostfiles {
		c.stop = fmt.Sprintf("more than %d pattern files", maxHostfiles)
		return false
	}
	c.hostfiles++
	f, err := openRules(path)
	if err != nil {
		// libwrap warns unless the file does not exist, and goes on.
		return false
	}
	c.seen[key] = fileOpen
	m := c.hostfileScan(path, f, h)
	f.Close()
	c.seen[key] = fileNoMatch
	if m {
		c.seen[key] = fileMatch
	}
	return m
}

func (c *checker) hostfileScan(path string, f *os.File, h *endpoint) bool {
	r := bufio.NewReaderSize(f, 4096)
	for {
		if c.ctx.Err() != nil {
			c.stop = "interrupted"
			return false
		}
		tok, ok, tooLong := scanWord(r)
		if tooLong {
			c.stop = fmt.Sprintf("%s: a pattern longer than %d bytes (libwrap would overflow its buffer)", path, maxHostfileToken)
			return false
		}
		if !ok {
			return false
		}
		if c.hostMatch(tok, h) {
			return true
		}
		if c.stop != "" {
			return false
		}
	}
}

// scanWord is fscanf(f, "%s"): it skips white space and reads the next
// run of non-space bytes. The word is returned as C sees it, up to its
// first NUL.
func scanWord(r *bufio.Reader) (word string, ok, tooLong bool) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", false, false
		}
		if !isSpace(c) {
			b = append(b, c)
			break
		}
	}
	for {
		c, err := r.ReadByte()
		if err != nil {
			break
		}
		if isSpace(c) {
			break
		}
		if len(b) >= maxHostfileToken {
			return "", false, true
		}
		b = append(b, c)
	}
	return cstr(b), true, false
}
