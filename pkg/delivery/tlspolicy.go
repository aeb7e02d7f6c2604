package delivery

import (
	"context"
	"crypto/tls"
	"strings"

	"smtp-bs/pkg/tlspolicy"
)

// The TLS policy of MX delivery (DANE, MTA-STS, remembered levels) is
// decided per MX host by pkg/tlspolicy; this file is the whole of the
// glue. Smarthosts and routes keep their configured TLS settings.

// withPolicy returns dest as the policy wants it for target tg: its TLS
// mode, and the decision whose tls.Config open uses. A decision that
// says Defer leaves the host untried.
func (t *Transport) withPolicy(ctx context.Context, dest Destination, tg target) (Destination, string) {
	domain, ok := strings.CutPrefix(dest.Key, "mx:")
	if t.o.TLSPolicyEngine == nil || !ok {
		return dest, ""
	}
	base := tlspolicy.Opportunistic
	switch {
	case dest.VerifyTLS:
		base = tlspolicy.RequiredVerified
	case dest.TLS == "none":
		base = tlspolicy.None
	}
	d := t.o.TLSPolicyEngine.Decide(ctx, domain, tg.host, base)
	if d.Defer != "" {
		t.o.TLSPolicyEngine.Observe(d, nil, nil)
		return dest, d.Defer
	}
	dest.TLS = policyMode(d)
	dest.policy = &d
	return dest, ""
}

// policyMode is the session mode for decision d.
func policyMode(d tlspolicy.Decision) string {
	switch {
	case d.Mode == tlspolicy.None:
		return "none"
	case d.Mode.RequiresTLS():
		return "required"
	default:
		return "opportunistic"
	}
}

// observe tells the policy how a new connection under dest ended.
func (t *Transport) observe(dest Destination, cn *conn, err error) {
	if dest.policy == nil {
		return
	}
	if cn == nil || err != nil {
		t.o.TLSPolicyEngine.Observe(*dest.policy, nil, err)
		return
	}
	tc, ok := cn.sc.Conn.(*tls.Conn)
	if !cn.tls || !ok {
		t.o.TLSPolicyEngine.Observe(*dest.policy, nil, nil)
		return
	}
	cs := tc.ConnectionState()
	t.o.TLSPolicyEngine.Observe(*dest.policy, &cs, nil)
}

func policyKey(dest Destination) string {
	if dest.policy == nil {
		return ""
	}
	return dest.policy.Key()
}

// explainPolicy is what qrun -route says of tg's TLS policy.
func (t *Transport) explainPolicy(ctx context.Context, dest Destination, tg target) string {
	domain, ok := strings.CutPrefix(dest.Key, "mx:")
	if t.o.TLSPolicyEngine == nil || !ok {
		return ""
	}
	base := tlspolicy.Opportunistic
	if dest.TLS == "none" {
		base = tlspolicy.None
	}
	d := t.o.TLSPolicyEngine.Decide(ctx, domain, tg.host, base)
	s := "     " + d.String() + "\n"
	for _, n := range d.Notes {
		s += "     " + n + "\n"
	}
	return s
}

// SetTLSPolicyLog sends the TLS policy's events to log.
func (t *Transport) SetTLSPolicyLog(log func(event string, kv ...any)) {
	if t.o.TLSPolicyEngine != nil {
		t.o.TLSPolicyEngine.SetLog(log)
	}
}
