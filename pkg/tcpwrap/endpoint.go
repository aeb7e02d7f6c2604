package tcpwrap

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// The strings libwrap puts in place of a host name or address it could not
// find ("unknown") or does not believe ("paranoid"). Patterns match them as
// text: UNKNOWN and PARANOID are not keywords of the matcher at all, they
// are just names that compare equal, case-insensitively, to these.
const (
	unknown  = "unknown"
	paranoid = "paranoid"
)

// stringLength is STRING_LENGTH, the size of libwrap's name, address, user
// and daemon fields; they keep at most stringLength-1 bytes.
const stringLength = 128

// checker holds the state of one Check: libwrap's request_info.
type checker struct {
	ctx       context.Context
	opts      Options
	res       Resolver
	dnsCtx    context.Context
	dnsCancel context.CancelFunc

	// malformed collects the rules skipped or misread on the way to the
	// verdict, for the caller to log (libwrap syslogs them).
	malformed []Problem

	daemon string
	user   string
	client endpoint
	server endpoint

	// hostfiles counts "/path" pattern files opened, and seen remembers
	// which, for which endpoint: see hostfileMatch.
	hostfiles int
	seen      map[seenKey]fileState
	// stop, once set, makes every further match fail and ends the scan:
	// the check then denies with this reason.
	stop string
}

type seenKey struct {
	path string
	host *endpoint
}

type fileState int

const (
	fileUnseen  fileState = iota
	fileOpen              // being read: reaching it again is a cycle
	fileNoMatch           // read, and nothing in it matched
	fileMatch             // read, and it matched
)

// endpoint is libwrap's host_info: an address and a name, each looked up
// at most once and only when a pattern needs it.
type endpoint struct {
	c    *checker
	has  bool // libwrap's host->sin != NULL
	ip   netip.Addr
	port uint16
	addr string // "" until evaluated
	name string // "" until evaluated
}

func newChecker(ctx context.Context, daemon string, cl Client, o Options) *checker {
	c := &checker{
		ctx:    ctx,
		opts:   o,
		res:    o.Resolver,
		daemon: truncate(daemon, stringLength-1),
		user:   truncate(cl.User, stringLength-1),
		seen:   map[seenKey]fileState{},
	}
	if c.res == nil {
		c.res = net.DefaultResolver
	}
	if c.user == "" {
		// An empty user would make libwrap ask the client's ident
		// server; we never do, so the user stays unknown.
		c.user = unknown
	}
	c.client = endpoint{c: c, has: cl.Addr.IsValid(), ip: cl.Addr.Unmap(), port: cl.Port}
	c.server = endpoint{c: c, has: cl.Local.Addr().IsValid(), ip: cl.Local.Addr().Unmap(), port: cl.Local.Port()}
	return c
}

func (c *checker) close() {
	if c.dnsCancel != nil {
		c.dnsCancel()
	}
}

// lookupCtx returns the context for name lookups: one deadline for all of
// them, started by the first, so a check never waits longer than
// LookupTimeout on DNS and a numeric rule set never starts the clock.
func (c *checker) lookupCtx() context.Context {
	if c.dnsCtx == nil {
		c.dnsCtx, c.dnsCancel = context.WithTimeout(c.ctx, c.opts.LookupTimeout)
	}
	return c.dnsCtx
}

// hostaddr is eval_hostaddr: the address as text, or "unknown".
func (e *endpoint) hostaddr() string {
	if e.addr == "" {
		e.addr = unknown
		if e.has {
			e.addr = formatAddr(e.ip)
		}
	}
	return e.addr
}

// hostname is eval_hostname: the verified name, "unknown" or "paranoid".
func (e *endpoint) hostname() string {
	if e.name == "" {
		e.name = unknown
		if e.has {
			e.lookupName()
		}
	}
	return e.name
}

// hostinfo is eval_hostinfo: the name if one was looked up and believed,
// else the address. It never starts a lookup itself, so what %h expands to
// depends on whether matching needed the name, as in libwrap.
func (e *endpoint) hostinfo() string {
	if e.name == "" {
		return e.hostaddr()
	}
	if n := e.hostname(); hostnameKnown(n) {
		return n
	}
	return e.hostaddr()
}

func hostnameKnown(s string) bool {
	return !equalFold(s, unknown) && !equalFold(s, paranoid)
}

// formatAddr prints an address the way getnameinfo(NI_NUMERICHOST) does.
func formatAddr(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	s := inetNtop6(ip.As16())
	if z := ip.Zone(); z != "" {
		s += "%" + z
	}
	return s
}

// lookupName is libwrap's sock_hostname, the double-reverse check: the
// address's name (its first PTR answer) is believed only if it is not
// itself numeric, it is its own canonical name (or "localhost"), and its
// forward lookup in the address's family gives the address back.
// Otherwise the name becomes "paranoid". When the reverse lookup fails the
// name stays "unknown".
//
// Go's resolver drops PTR answers that are not valid host names, numeric
// ones such as "192.0.2.1" among them, and says so in its error even when
// names are left; libwrap would have taken the first answer, numeric or
// not. Which one came first is lost, so any dropped answer makes the name
// "paranoid": that fails closed for both PARANOID and UNKNOWN (which
// matches a paranoid name too), where "unknown" let a numeric PTR past
// "ALL: PARANOID" in hosts.deny.
func (e *endpoint) lookupName() {
	ctx := e.c.lookupCtx()
	names, err := e.c.res.LookupAddr(ctx, e.ip.String())
	if err != nil && droppedInvalidNames(err) {
		e.name = paranoid
		return
	}
	if err != nil || len(names) == 0 {
		return
	}
	name := strings.TrimSuffix(names[0], ".")
	if len(name) >= 1025 { // NI_MAXHOST: getnameinfo would fail
		return
	}
	name = truncate(name, stringLength-1)
	e.name = name
	if isNumericHost(name) {
		e.name = paranoid
		return
	}
	addrs, err := e.c.res.LookupHost(ctx, name)
	if err != nil {
		e.name = paranoid
		return
	}
	if !equalFold(name, "localhost") {
		canon := name
		if cr, ok := e.c.res.(CNAMEResolver); ok {
			cn, err := cr.LookupCNAME(ctx, name)
			if err != nil {
				e.name = paranoid
				return
			}
			canon = strings.TrimSuffix(cn, ".")
		}
		if !equalFold(name, canon) {
			e.name = paranoid
			return
		}
	}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		// getaddrinfo was asked for the client's family only; an IPv6
		// answer must also carry the same scope.
		if e.ip.Is4() && ip.Is4() && ip == e.ip {
			return
		}
		if e.ip.Is6() && ip.Is6() && !ip.Is4In6() && ip == e.ip {
			return
		}
	}
	e.name = paranoid
}

// client is eval_client: user@host when the user is known, else the host.
func (c *checker) evalClient() string {
	h := c.client.hostinfo()
	if c.user != "" && !equalFold(c.user, unknown) {
		return c.user + "@" + h
	}
	return h
}

// evalServer is eval_server: daemon@host when the server host is known.
func (c *checker) evalServer() string {
	h := c.server.hostinfo()
	if !equalFold(h, unknown) {
		return c.daemon + "@" + h
	}
	return c.daemon
}

// evalPort is eval_port: the endpoint's port, "0" without an endpoint.
func (e *endpoint) evalPort() string {
	if !e.has {
		return "0"
	}
	return strconv.Itoa(int(e.port))
}

func evalPid() string { return strconv.Itoa(os.Getpid()) }

// invalidNamesDetail is how the net package says that it dropped answers
// which are not valid names; it exports no error value for it.
const invalidNamesDetail = "DNS response contained records which contain invalid names"

func droppedInvalidNames(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.Err == invalidNamesDetail
}
