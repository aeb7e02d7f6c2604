package tcpwrap

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// gen makes random rule files, clients and name services for the
// differential test. Patterns are drawn around the client's own address and
// names so that a good share of them match; everything comes from one
// seeded generator, so a failing case can be replayed from its seed.
//
// It never writes what would make libwrap run a program (spawn, twist,
// aclexec), exit (an over-long %-expansion), crash (a pattern file cycle,
// a pattern file word over 8191 bytes) or use the network (ident lookups,
// real DNS: all names go through the shared fake).
type gen struct {
	r   *rand.Rand
	dir string // where this case's files go

	client netip.Addr
	local  netip.AddrPort
	names  []string // names the fake DNS knows, to draw patterns from
	files  []string // pattern files written so far (a DAG: no cycles)
}

// envNames are the variables the differential test compares.
var envNames = []string{"RELAYCLIENT", "TW_A", "TW_B"}

type genCase struct {
	daemon      string
	allow, deny string
	client      Client
	dns         *fakeDNS
	mapped      bool // client given as v4-mapped IPv6
}

func (g *gen) pick(items ...string) string { return items[g.r.IntN(len(items))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) newCase(dir string) genCase {
	g.dir = dir
	g.files = nil
	g.names = nil
	var c genCase
	c.daemon = g.pick("smtp-bs", "smtp-bs", "smtp-bs", "sshd", "in.smtpd", "SMTP-BS", "25")
	g.client = g.address()
	c.client.Addr = g.client
	if g.client.Is4() && g.client != netip.MustParseAddr("255.255.255.255") && g.chance(0.1) {
		// libwrap sees the mapped form; we must decide as for IPv4.
		c.client.Addr = netip.AddrFrom16(g.client.As16())
		c.mapped = true
	}
	if g.chance(0.02) {
		c.client.Addr = netip.Addr{}
	}
	c.client.Port = uint16(g.r.IntN(65536))
	if g.chance(0.3) {
		srv := g.pick("192.0.2.25", "198.51.100.7", "2001:db8::25", "127.0.0.1")
		g.local = netip.AddrPortFrom(netip.MustParseAddr(srv), uint16([]int{25, 587, 2525, 0}[g.r.IntN(4)]))
		c.client.Local = g.local
	} else {
		g.local = netip.AddrPort{}
	}
	if g.chance(0.15) {
		c.client.User = g.pick("alice", "Alice", "root", "unknown", "a b")
	}
	c.dns = g.dns()
	if g.chance(0.85) {
		c.allow = g.writeTable("hosts.allow")
	} else {
		c.allow = filepath.Join(dir, "hosts.allow") // absent
	}
	if g.chance(0.85) {
		c.deny = g.writeTable("hosts.deny")
	} else {
		c.deny = filepath.Join(dir, "hosts.deny")
	}
	return c
}

// address draws a client address, biased towards forms whose text is
// tricky: zero runs, v4-compatible and mapped v6, the broadcast address.
func (g *gen) address() netip.Addr {
	switch g.r.IntN(10) {
	case 0, 1, 2:
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(g.r.IntN(4))})
	case 3:
		return netip.AddrFrom4([4]byte{10, byte(g.r.IntN(3)), byte(g.r.IntN(3)), byte(g.r.IntN(256))})
	case 4:
		return netip.MustParseAddr(g.pick("255.255.255.255", "0.0.0.0", "127.0.0.1", "1.2.3.4", "192.0.2.255"))
	case 5, 6:
		var a [16]byte
		copy(a[:], []byte{0x20, 0x01, 0x0d, 0xb8})
		for i := 4; i < 16; i += 2 {
			if g.chance(0.5) {
				a[i] = byte(g.r.IntN(3))
				a[i+1] = byte(g.r.IntN(256))
			}
		}
		return netip.AddrFrom16(a)
	case 7:
		return netip.MustParseAddr(g.pick("::1", "::", "::2", "::102:304", "fe80::1", "2001:db8::1",
			"2001:db8:0:1::", "1::", "2001:db8:0:0:1:0:0:1", "::ffff:0:102:304", "64:ff9b::102:304"))
	default:
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(g.r.IntN(3))})
	}
}

var namePool = []string{"mx.example.org", "MX.Example.ORG", "host1.example.com", "gateway",
	"www.example.net", "localhost", "a.b", "example.org", "mail.badexample.org"}

// dns draws what the name service says about the client (and server).
func (g *gen) dns() *fakeDNS {
	d := &fakeDNS{}
	add := func(ip netip.Addr) {
		if !ip.IsValid() {
			return
		}
		name := g.pick(namePool...)
		switch g.r.IntN(9) {
		case 0, 1: // no PTR record
			return
		case 2, 3, 4: // verified
			d.ptr = append(d.ptr, fakePTR{ip, name})
			d.hosts = append(d.hosts, fakeHost{strings.ToLower(name), strings.ToLower(name), ip})
		case 5: // forward lookup gives other addresses
			d.ptr = append(d.ptr, fakePTR{ip, name})
			d.hosts = append(d.hosts, fakeHost{name, name, netip.MustParseAddr(g.pick("192.0.2.200", "2001:db8::200"))})
		case 6: // an alias: the canonical name differs
			d.ptr = append(d.ptr, fakePTR{ip, name})
			d.hosts = append(d.hosts, fakeHost{name, "canonical.example.org", ip})
		case 7: // PTR only
			d.ptr = append(d.ptr, fakePTR{ip, name})
		case 8: // a numeric PTR
			name = g.pick("10.0.0.1", "192.0.2.1", "2001:db8::1", "1.2", "0x7f.1")
			d.ptr = append(d.ptr, fakePTR{ip, name})
		}
		g.names = append(g.names, name)
	}
	add(g.client)
	if g.local.IsValid() && g.chance(0.5) {
		add(g.local.Addr())
	}
	// A name has one canonical name, whatever the address family asked
	// for (our Resolver's LookupCNAME has no family).
	canon := map[string]string{}
	for i, h := range d.hosts {
		k := strings.ToLower(h.name)
		if c, ok := canon[k]; ok {
			d.hosts[i].canon = c
		} else {
			canon[k] = h.canon
		}
	}
	return d
}

func (g *gen) writeTable(name string) string {
	var b strings.Builder
	n := g.r.IntN(6)
	for i := 0; i < n; i++ {
		b.WriteString(g.line())
	}
	s := b.String()
	if g.chance(0.05) && len(s) > 0 {
		s = strings.TrimSuffix(s, "\n") // the missing final newline
	}
	if g.chance(0.03) {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	if g.chance(0.15) {
		s = g.mutate(s)
	}
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		panic(err)
	}
	return p
}

func (g *gen) line() string {
	switch g.r.IntN(20) {
	case 0:
		return "# " + g.pick("comment", "ALL: ALL", "x \\") + "\n"
	case 1:
		return g.pick("\n", "  \t\n", " # not a comment: ALL\n")
	case 2:
		if g.chance(0.2) {
			return "ALL: " + strings.Repeat("9", 2040+g.r.IntN(20)) + "\n"
		}
	}
	rule := g.list(g.daemonPattern, 3) + g.pick(":", " : ", ": ", "\t:") + g.list(g.clientPattern, 4)
	if g.chance(0.4) {
		rule += g.optionsText()
	}
	return g.continuations(rule) + "\n"
}

// continuations breaks a rule over lines with backslash-newline, which
// libwrap removes without leaving a blank.
func (g *gen) continuations(s string) string {
	if !g.chance(0.15) || len(s) < 2 {
		return s
	}
	i := 1 + g.r.IntN(len(s)-1)
	return s[:i] + "\\\n" + s[i:]
}

func (g *gen) list(elem func() string, max int) string {
	var parts []string
	n := 1 + g.r.IntN(max)
	for i := 0; i < n; i++ {
		parts = append(parts, elem())
		if i < n-1 && g.chance(0.15) {
			parts = append(parts, g.pick("EXCEPT", "except"))
		}
	}
	if g.chance(0.05) {
		parts = append(parts, "EXCEPT")
	}
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(g.pick(" ", ", ", ",", "\t", " ,"))
		}
		b.WriteString(p)
	}
	return b.String()
}

func (g *gen) daemonPattern() string {
	switch g.r.IntN(14) {
	case 0:
		return "smtp-bs@" + g.hostPattern(g.localAddr())
	case 1:
		return "ALL@" + g.hostPattern(g.localAddr())
	case 2:
		return g.pick("25", "587", "+25", "0", "65536", "25x")
	}
	return g.pick("ALL", "ALL", "smtp-bs", "smtp-bs", "sshd", "in.smtpd", ".smtpd", "smtp-*",
		"smtp?bs", "KNOWN", "SMTP-BS", "@x")
}

func (g *gen) localAddr() netip.Addr {
	if g.local.IsValid() {
		return g.local.Addr()
	}
	return g.client
}

func (g *gen) clientPattern() string {
	switch g.r.IntN(12) {
	case 0:
		return g.pick("alice", "ALL", "KNOWN", "UNKNOWN", "a*", "root") + "@" + g.hostPattern(g.client)
	case 1:
		return g.hostFile()
	}
	return g.hostPattern(g.client)
}

// hostPattern draws a host pattern near addr (or near the known names).
func (g *gen) hostPattern(addr netip.Addr) string {
	if !addr.IsValid() {
		addr = netip.MustParseAddr("192.0.2.1")
	}
	switch g.r.IntN(16) {
	case 0:
		return g.pick("ALL", "LOCAL", "KNOWN", "UNKNOWN", "PARANOID", "unknown", "paranoid", "local", "@netgroup")
	case 1, 2:
		if addr.Is4() {
			return g.v4Pattern(addr)
		}
		return g.v6Pattern(addr)
	case 3:
		return g.v4Pattern(addr.Unmap())
	case 4:
		return g.v6Pattern(addr)
	case 5:
		return g.wildcard(formatAddr(addr.Unmap()))
	case 6, 7:
		if len(g.names) > 0 {
			return g.namePattern(g.names[g.r.IntN(len(g.names))])
		}
		return g.namePattern(g.pick(namePool...))
	case 8:
		return formatAddr(addr.Unmap())
	case 9:
		return g.pick(".example.org", ".ORG", ".org.", "example.", ".", "*", "?", "**", "[", "]", "[]",
			"/", "a/b", "[::1", "::1]", "1.2.3.4/", "/etc/nonexistent-tcpwrap")
	}
	if addr.Is4() {
		return g.v4Pattern(addr)
	}
	return g.v6Pattern(addr)
}

func (g *gen) v4Pattern(addr netip.Addr) string {
	if !addr.Is4() {
		addr = netip.MustParseAddr(g.pick("192.0.2.1", "10.0.0.1"))
	}
	o := addr.As4()
	q := func(a, b, c, d byte) string { return fmt.Sprintf("%d.%d.%d.%d", a, b, c, d) }
	bits := g.r.IntN(34)
	mask := uint32(0)
	if bits > 0 && bits <= 32 {
		mask = ^uint32(0) << uint(32-bits)
	}
	v := uint32(o[0])<<24 | uint32(o[1])<<16 | uint32(o[2])<<8 | uint32(o[3])
	net := v & mask
	if g.chance(0.15) {
		net = v // host bits set
	}
	if g.chance(0.1) {
		net ^= 1 << uint(g.r.IntN(32)) // another network
	}
	netText := q(byte(net>>24), byte(net>>16), byte(net>>8), byte(net))
	switch g.r.IntN(9) {
	case 0:
		return q(o[0], o[1], o[2], o[3])
	case 1:
		return fmt.Sprintf("%d.%d.", o[0], o[1])
	case 2:
		return fmt.Sprintf("%d.%d.%d.", o[0], o[1], o[2])
	case 3:
		return fmt.Sprintf("%d.", o[0])
	case 4:
		return netText + "/" + strconv.Itoa(bits)
	case 5:
		return netText + "/" + q(byte(mask>>24), byte(mask>>16), byte(mask>>8), byte(mask))
	case 6:
		return netText + "/" + g.pick("255.255.255.255", "0.0.0.0", "255.0.255.0", "24junk", "-8", "0x18", "", "4294967320", "255.255")
	case 7:
		return fmt.Sprintf("0%o.%d.%d.%d", o[0], o[1], o[2], o[3]) + g.pick("", "/24", "/255.255.255.0")
	default:
		return fmt.Sprintf(".%d", o[3])
	}
}

func (g *gen) v6Pattern(addr netip.Addr) string {
	if !addr.Is6() || addr.Is4In6() {
		addr = netip.MustParseAddr(g.pick("2001:db8::1", "::1"))
	}
	a := addr.As16()
	if g.chance(0.2) {
		a[g.r.IntN(16)] ^= byte(1 << uint(g.r.IntN(8)))
	}
	text := g.pick(inetNtop6(a), netip.AddrFrom16(a).StringExpanded(), strings.ToUpper(inetNtop6(a)))
	switch g.r.IntN(6) {
	case 0:
		return "[" + text + "]"
	case 1:
		return "[" + text + "]/" + strconv.Itoa(g.r.IntN(131))
	case 2:
		return "[" + text + "]/" + g.pick("", "64x", "-1", "0x40", "4294967360")
	case 3:
		return text // unbracketed: libwrap splits it at its first ':'
	case 4:
		return "[" + text + "%" + g.pick("1", "0", "x", "", "4294967296") + "]"
	default:
		return "[" + inetNtop6(a) + "]/" + strconv.Itoa(8*g.r.IntN(17))
	}
}

func (g *gen) namePattern(name string) string {
	labels := strings.Split(name, ".")
	switch g.r.IntN(6) {
	case 0:
		return name
	case 1:
		return strings.ToUpper(name)
	case 2:
		if len(labels) > 1 {
			return "." + strings.Join(labels[1:], ".")
		}
		return "." + name
	case 3:
		return g.wildcard(name)
	case 4:
		return labels[0] + "."
	default:
		return g.pick("LOCAL", "KNOWN", "PARANOID", "UNKNOWN")
	}
}

// wildcard replaces some bytes of s by '?' and some runs by '*'.
func (g *gen) wildcard(s string) string {
	b := []byte(s)
	out := make([]byte, 0, len(b)+2)
	for i := 0; i < len(b); i++ {
		switch g.r.IntN(8) {
		case 0:
			out = append(out, '?')
		case 1:
			out = append(out, '*')
			i += g.r.IntN(3)
		default:
			out = append(out, b[i])
		}
	}
	if g.chance(0.1) {
		out = append(out, '*', '*')
	}
	return string(out)
}

// hostFile writes a pattern file that may name earlier ones (never later
// ones: a cycle would crash libwrap).
func (g *gen) hostFile() string {
	if len(g.files) > 0 && g.chance(0.3) {
		return g.files[g.r.IntN(len(g.files))]
	}
	p := filepath.Join(g.dir, fmt.Sprintf("pat%d", len(g.files)))
	var b strings.Builder
	n := g.r.IntN(5)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(g.pick(" ", "\n", "\t", " \v", ","))
		}
		if len(g.files) > 0 && g.chance(0.2) {
			b.WriteString(g.files[g.r.IntN(len(g.files))])
		} else {
			b.WriteString(g.hostPattern(g.client))
		}
	}
	if g.chance(0.7) {
		b.WriteString("\n")
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		panic(err)
	}
	g.files = append(g.files, p)
	return p
}

func (g *gen) optionsText() string {
	var opts []string
	n := 1 + g.r.IntN(3)
	for i := 0; i < n; i++ {
		opts = append(opts, g.option())
	}
	if g.chance(0.3) {
		opts = append(opts, g.pick("allow", "deny", "ALLOW", "Deny", "allow = ", "deny x"))
	}
	var b strings.Builder
	for _, o := range opts {
		b.WriteString(g.pick(":", ": ", " : "))
		b.WriteString(o)
	}
	if g.chance(0.05) {
		b.WriteString(":")
	}
	return b.String()
}

func (g *gen) option() string {
	switch g.r.IntN(16) {
	case 0, 1, 2, 3:
		name := g.pick(envNames...)
		if g.chance(0.05) {
			name = "TW_A=B"
		}
		return g.pick("setenv ", "setenv=", "SETENV  ", "setenv = ") + name + g.pick("", " ", " x", "  two words ", " %a", " %c/%h", " %d-%u", " %n", " %s %R %r", " %%", " a\\:b", " %A %H %N", " %q")
	case 4, 5:
		return "severity " + g.pick("info", "notice", "mail.info", "MAIL.Warning", "local7.debug", "err", "loud", "auth.", ".info", "authpriv.info", "kern.emerg")
	case 6:
		return g.pick("nice", "nice 5", "nice -3", "nice x", "nice 5x", "nice +2")
	case 7:
		return g.pick("umask 022", "umask 777", "umask 1000", "umask 8", "umask", "umask 0")
	case 8:
		return g.pick("linger 10", "linger -1", "linger x", "linger")
	case 9:
		return g.pick("keepalive", "keepalive 1", "rfc931", "rfc931 5", "rfc931 0", "rfc931 x")
	case 10:
		return g.pick("user nobody", "user root", "user no-such-user-tw", "user nobody.nogroup", "user root.no-such-group-tw", "group root", "group no-such-group-tw", "user")
	case 11:
		return g.pick("banners /nonexistent/tcpwrap", "banners")
	case 12:
		return g.pick("", " ", "bogus", "Severity", "=", "setenv")
	}
	return g.pick("severity info", "setenv RELAYCLIENT")
}

// mutate damages text a little: inserted bytes that mean something to the
// parser (NUL, brackets, colons, backslashes, newlines...), deleted bytes
// and doubled runs. It cannot spell a command-running option: those words
// never appear in generated text.
func (g *gen) mutate(s string) string {
	const special = "\x00[]:\\\n, @/.*?%\v\t#=\xe9\x80aZ5"
	b := []byte(s)
	for n := 1 + g.r.IntN(4); n > 0; n-- {
		i := 0
		if len(b) > 0 {
			i = g.r.IntN(len(b) + 1)
		}
		switch g.r.IntN(3) {
		case 0:
			b = append(b[:i], append([]byte{special[g.r.IntN(len(special))]}, b[i:]...)...)
		case 1:
			if i < len(b) {
				b = append(b[:i], b[i+1:]...)
			}
		default:
			if i < len(b) {
				j := i + g.r.IntN(min(8, len(b)-i)+1)
				b = append(b[:j], append(append([]byte{}, b[i:j]...), b[j:]...)...)
			}
		}
	}
	return string(b)
}
