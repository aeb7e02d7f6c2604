package tlspolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// resolver asks one DNS server with the DO bit and reports whether it
// vouched for the answer (AD). The AD bit is only as good as the path to
// the validator: it is believed from a loopback server (a validating
// resolver on this host, such as unbound) or from a server the admin
// named as trusted, never from a server across the network, as Postfix's
// smtp_dns_support_level = dnssec does.
type resolver struct {
	addr    string // ip:port
	trustAD bool
	timeout time.Duration
}

// answer is one DNS reply: its records of the asked type, whether the
// server validated it (and is believed), and NXDOMAIN.
type answer struct {
	rrs      []dns.RR
	secure   bool
	nxdomain bool
}

// errDNS is a lookup that failed (SERVFAIL, timeout, refused): a signed
// zone's records could not be had, which is a temporary condition.
var errDNS = errors.New("DNS lookup failed")

// newResolver picks the server: addr ("ip:port"), or the first
// nameserver of /etc/resolv.conf.
func newResolver(addr string, trusted []string) (*resolver, error) {
	if addr == "" {
		cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cfg.Servers) == 0 {
			return nil, fmt.Errorf("tlspolicy: no resolver: /etc/resolv.conf: %v", err)
		}
		addr = net.JoinHostPort(cfg.Servers[0], cfg.Port)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tlspolicy: resolver %q: %w", addr, err)
	}
	return &resolver{addr: addr, trustAD: TrustedResolver(host, trusted), timeout: 5 * time.Second}, nil
}

// TrustedResolver says whether an AD bit from host may be believed: a
// loopback address, or one listed in trusted.
func TrustedResolver(host string, trusted []string) bool {
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return true
	}
	for _, t := range trusted {
		if t == host {
			return true
		}
		if h, _, err := net.SplitHostPort(t); err == nil && h == host {
			return true
		}
	}
	return false
}

// ResolverAddr is the server a policy built from addr would ask.
func ResolverAddr(addr string) string {
	if addr != "" {
		return addr
	}
	if cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(cfg.Servers) > 0 {
		return net.JoinHostPort(cfg.Servers[0], cfg.Port)
	}
	return ""
}

func (r *resolver) query(ctx context.Context, name string, qtype uint16) (answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true // RFC 6840 5.7: ask for the AD bit
	m.SetEdns0(4096, true)
	c := &dns.Client{Timeout: r.timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.addr)
	}
	if err != nil {
		return answer{}, fmt.Errorf("%w: %s %s: %v", errDNS, name, dns.TypeToString[qtype], err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return answer{nxdomain: true, secure: r.trustAD && in.AuthenticatedData}, nil
	default:
		return answer{}, fmt.Errorf("%w: %s %s: %s", errDNS, name, dns.TypeToString[qtype], dns.RcodeToString[in.Rcode])
	}
	a := answer{secure: r.trustAD && in.AuthenticatedData}
	for _, rr := range in.Answer {
		if rr.Header().Rrtype == qtype {
			a.rrs = append(a.rrs, rr)
		}
	}
	return a, nil
}

// txt returns the TXT strings at name (each record's strings joined), or
// nil when there are none.
func (r *resolver) txt(ctx context.Context, name string) ([]string, error) {
	a, err := r.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range a.rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

// ProbeResolver says whether DANE can work with the resolver at addr
// ("" = /etc/resolv.conf's first): it must be trusted (loopback or
// listed) and validate, which shows as AD on the signed root zone's NS
// records (as Postfix's dnssec_probe asks). ok is false with a reason.
func ProbeResolver(ctx context.Context, addr string, trusted []string) (string, bool) {
	r, err := newResolver(addr, trusted)
	if err != nil {
		return err.Error(), false
	}
	if !r.trustAD {
		return fmt.Sprintf("the resolver %s is neither on loopback nor in [tls_policy] trusted_resolvers: its AD bit is not believed, so DANE never applies (run a validating resolver such as unbound on this host)", r.addr), false
	}
	r.timeout = 3 * time.Second
	a, err := r.query(ctx, ".", dns.TypeNS)
	if err != nil {
		return fmt.Sprintf("the resolver %s did not answer a DNSSEC probe (. NS): %v", r.addr, err), false
	}
	if !a.secure {
		return fmt.Sprintf("the resolver %s does not validate DNSSEC (no AD on . NS): DANE never applies (enable validation, e.g. unbound's auto-trust-anchor-file)", r.addr), false
	}
	return fmt.Sprintf("the resolver %s validates DNSSEC: DANE can apply", r.addr), true
}
