package check

import (
	"context"
	"time"
)

// ResolverProbe reports, in words, whether the resolver at addr (or the
// system's) is one whose DNSSEC answers can be believed, and whether that
// is so.
type ResolverProbe func(ctx context.Context, addr string, trusted []string) (string, bool)

// tlsPolicy warns when DANE is on but cannot work: the resolver is not a
// local (or trusted) validating one, so no TLSA record is ever believed.
// A warning, not a finding: mail still flows, only less protected.
func (au *auditor) tlsPolicy() {
	p := au.Config.TLSPolicy
	if !p.DANE || len(au.Config.Delivery.Smarthost) > 0 {
		return // DANE applies to MX delivery only
	}
	if au.ProbeResolver == nil {
		au.ok("DANE: on; qrun -check probes whether the resolver validates DNSSEC")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, ok := au.ProbeResolver(ctx, au.Config.Delivery.Resolver, p.TrustedResolvers)
	if ok {
		au.ok("DANE: %s", msg)
		return
	}
	au.note("warning: [tls_policy] dane is on, but %s", msg)
}
