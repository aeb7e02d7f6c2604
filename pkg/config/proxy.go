package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Proxy configures the PROXY protocol for smtp-bs behind a TCP load
// balancer (HAProxy, nginx stream, a cloud LB). A connection from a
// trusted network must start with a PROXY header (v1 or v2), and the
// client it names is the one every decision and record uses; a
// connection from anywhere else is served as without a balancer, and a
// header it sends is never read as one.
type Proxy struct {
	// Trusted lists the balancers' networks (CIDR or bare addresses).
	// Empty (the default): no connection is read for a header.
	Trusted []string `toml:"trusted"`
	// HeaderTimeout bounds the wait for the header; a trusted peer that
	// sends none in time is dropped.
	HeaderTimeout Duration `toml:"header_timeout"`

	trusted []netip.Prefix
}

func defaultProxy() Proxy { return Proxy{HeaderTimeout: Duration{10 * time.Second}} }

func (c *Config) validateProxy(bad func(string, ...string) error) error {
	c.Proxy.trusted = nil
	if len(c.Proxy.Trusted) == 0 {
		c.Proxy.Trusted = nil // unset and empty mean the same: no balancer
	}
	for _, n := range c.Proxy.Trusted {
		p, err := parseNetwork(n)
		if err != nil {
			return bad(err.Error(), "proxy", "trusted")
		}
		c.Proxy.trusted = append(c.Proxy.trusted, p)
	}
	if d := c.Proxy.HeaderTimeout.Duration; d <= 0 || d > time.Minute {
		return bad(fmt.Sprintf("must be positive and at most 1m, not %v", d), "proxy", "header_timeout")
	}
	return nil
}

// IsTrusted reports whether addr is a trusted balancer.
func (p *Proxy) IsTrusted(addr netip.Addr) bool { return inNetworks(p.trusted, addr) }

// inNetworks reports whether addr (v4-mapped or not) is in one of nets.
func inNetworks(nets []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, n := range nets {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}
