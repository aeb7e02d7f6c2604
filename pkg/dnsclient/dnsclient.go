// Package dnsclient builds the resolver smtp-bs's checks (DNSBL, SPF, DKIM,
// DMARC) ask. smtp-bs is one process per connection, so no cache of ours
// can outlive a connection: the cache is a local caching resolver
// (unbound), and Server points the checks at it.
//
// Names are queried rooted (a trailing dot), so that resolv.conf's search
// list never turns one NXDOMAIN, the common answer of a DNSBL, into a
// query per search domain.
package dnsclient

import (
	"context"
	"errors"
	"net"
	"strings"
)

// Resolver is the part of net.Resolver the checks use.
type Resolver interface {
	LookupIP(ctx context.Context, network, host string) ([]net.IP, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// New returns Go's own resolver (no cgo, no nsswitch), sending every query
// to server ("ip:port") when it is set, else to resolv.conf's servers.
// Nothing is read or dialled until the first query.
func New(server string) Resolver {
	r := &net.Resolver{PreferGo: true}
	if server != "" {
		var d net.Dialer
		r.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		}
	}
	return rooted{r}
}

// rooted adds the trailing dot to every name it is asked.
type rooted struct{ r *net.Resolver }

func root(name string) string {
	if name == "" || strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func (r rooted) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	return r.r.LookupIP(ctx, network, root(host))
}

func (r rooted) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return r.r.LookupTXT(ctx, root(name))
}

func (r rooted) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return r.r.LookupMX(ctx, root(name))
}

func (r rooted) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return r.r.LookupIPAddr(ctx, root(host))
}

func (r rooted) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return r.r.LookupAddr(ctx, addr)
}

// NotFound reports whether err says the name or the record does not exist
// (NXDOMAIN, or no record of that type): an answer, not a failure.
func NotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
