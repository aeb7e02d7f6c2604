package delivery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"smtp-bs/pkg/spool"
)

// target is one address to try, with the name to verify its certificate.
type target struct {
	host string // name as routed (MX host or configured host)
	addr string // ip:port
	hop  string // the smarthost or route as configured; "" for MX
}

// splitHop parses "host:port", "[host]:port", "[host]" or "host"; brackets
// mean "no MX lookup", as in sendmail and Postfix.
func splitHop(hop, defPort string) (host, port string, noMX bool) {
	port = defPort
	if strings.HasPrefix(hop, "[") {
		end := strings.IndexByte(hop, ']')
		if end > 0 {
			host = hop[1:end]
			if rest := hop[end+1:]; strings.HasPrefix(rest, ":") {
				port = rest[1:]
			}
			return host, port, true
		}
	}
	if h, p, err := net.SplitHostPort(hop); err == nil {
		return h, p, false
	}
	return hop, port, false
}

// resolve turns a destination into addresses, in order. On failure it
// says whether the failure is permanent: only for MX delivery, when the
// recipient's domain does not exist or publishes a null MX.
func (t *Transport) resolve(ctx context.Context, d Destination) ([]target, spool.Status, string) {
	var out []target
	st, reply := spool.Deferred, ""
	for _, hop := range d.Hops {
		defPort := t.o.Port
		if d.Relay {
			defPort = "25"
		}
		host, port, noMX := splitHop(hop, defPort)
		l := t.lookup(ctx, host, port, noMX)
		if len(l.addrs) == 0 {
			st, reply = l.st, l.reply
			if d.Relay {
				st = spool.Deferred // the admin named it: never bounce for DNS
			}
			continue
		}
		for _, tg := range l.addrs {
			if d.Relay {
				tg.hop = hop
			}
			out = append(out, tg)
		}
	}
	if len(out) > t.o.MaxHosts {
		out = out[:t.o.MaxHosts]
	}
	if len(out) == 0 {
		return nil, st, reply
	}
	return out, "", ""
}

// lookup resolves one name, MX first unless noMX, and caches the answer.
func (t *Transport) lookup(ctx context.Context, host, port string, noMX bool) lookup {
	key := fmt.Sprintf("%s|%s|%v", host, port, noMX)
	t.mu.Lock()
	if l, ok := t.cache[key]; ok {
		t.mu.Unlock()
		return l
	}
	t.mu.Unlock()
	l := t.doLookup(ctx, host, port, noMX)
	t.mu.Lock()
	t.cache[key] = l
	t.mu.Unlock()
	return l
}

func (t *Transport) doLookup(ctx context.Context, host, port string, noMX bool) lookup {
	if ip, err := netip.ParseAddr(strings.TrimPrefix(host, "IPv6:")); err == nil {
		return lookup{addrs: []target{{host: host, addr: net.JoinHostPort(ip.String(), port)}}}
	}
	if noMX {
		return t.hostAddrs(ctx, host, port)
	}
	mxs, err := t.o.Resolver.LookupMX(ctx, host)
	if err != nil {
		if isNotFound(err) {
			// RFC 5321 5.1: no MX records, the host itself is the implicit MX.
			return t.hostAddrs(ctx, host, port)
		}
		return lookup{st: spool.Deferred, reply: fmt.Sprintf("MX lookup of %s: %v", host, err)}
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		return lookup{st: spool.Failed, reply: fmt.Sprintf("5.1.10 %s publishes a null MX (RFC 7505): it accepts no mail", host)}
	}
	if len(mxs) == 0 {
		return t.hostAddrs(ctx, host, port)
	}
	var out lookup
	var lastErr string
	for _, mx := range mxs {
		name := strings.TrimSuffix(mx.Host, ".")
		l := t.hostAddrs(ctx, name, port)
		if len(l.addrs) == 0 {
			lastErr = l.reply
			continue
		}
		out.addrs = append(out.addrs, l.addrs...)
	}
	if len(out.addrs) == 0 {
		// MX hosts that do not resolve are a temporary problem of theirs.
		return lookup{st: spool.Deferred, reply: fmt.Sprintf("no MX host of %s resolves: %s", host, lastErr)}
	}
	return out
}

func (t *Transport) hostAddrs(ctx context.Context, host, port string) lookup {
	addrs, err := t.o.Resolver.LookupHost(ctx, host)
	if err != nil {
		if isNotFound(err) {
			return lookup{st: spool.Failed, reply: fmt.Sprintf("5.1.2 host or domain %s not found (NXDOMAIN)", host)}
		}
		return lookup{st: spool.Deferred, reply: fmt.Sprintf("lookup of %s: %v", host, err)}
	}
	var out lookup
	for _, a := range addrs {
		out.addrs = append(out.addrs, target{host: host, addr: net.JoinHostPort(a, port)})
	}
	if len(out.addrs) == 0 {
		return lookup{st: spool.Failed, reply: fmt.Sprintf("5.1.2 %s has no address", host)}
	}
	return out
}

// isNotFound: the name does not exist (NXDOMAIN) or has no such records.
// Timeouts and SERVFAIL are not "not found".
func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound && !de.IsTimeout && !de.IsTemporary
}

// Explain says, for a person, what would happen to rcpt: its route and the
// hosts it would be tried at, in order, or why it would fail.
func (t *Transport) Explain(ctx context.Context, rcpt string) string {
	d := t.Route(rcpt)
	var b strings.Builder
	switch {
	case strings.HasPrefix(d.Key, loopKey):
		fmt.Fprintf(&b, "<%s>: would be deferred: %s is one of this host's names but is neither delivered here ([local] domains) nor routed\n", rcpt, d.Key[len(loopKey):])
		return b.String()
	case strings.HasPrefix(d.Key, "route:"):
		fmt.Fprintf(&b, "<%s>: relayed by the route for its domain to %s (TLS %s)\n", rcpt, d.Hops[0], d.TLS)
	case d.Key == "smarthost":
		fmt.Fprintf(&b, "<%s>: relayed by smarthost %s (TLS %s)\n", rcpt, strings.Join(d.Hops, ", then "), d.TLS)
	default:
		fmt.Fprintf(&b, "<%s>: delivered to the MX hosts of %s (TLS %s)\n", rcpt, d.Hops[0], d.TLS)
	}
	targets, st, reply := t.resolve(ctx, d)
	if len(targets) == 0 {
		fmt.Fprintf(&b, "  now: %s: %s\n", map[spool.Status]string{spool.Failed: "would bounce", spool.Deferred: "would be deferred"}[st], reply)
		return b.String()
	}
	for i, tg := range targets {
		fmt.Fprintf(&b, "  %d. %s [%s]\n", i+1, tg.host, tg.addr)
		b.WriteString(t.explainPolicy(ctx, d, tg))
	}
	return b.String()
}
