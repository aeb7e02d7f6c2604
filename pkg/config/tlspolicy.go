package config

import (
	"net"
	"strings"
)

// TLSPolicy is [tls_policy]: what MX delivery demands of TLS beyond
// [delivery] mx_tls (pkg/tlspolicy, docs/tls-policy.md).
type TLSPolicy struct {
	// DANE: authenticate MX hosts by their DNSSEC-signed TLSA records.
	// Needs a validating resolver on this host (or a trusted one).
	DANE bool `toml:"dane"`
	// MTASTS: apply the domain's MTA-STS policy (RFC 8461).
	MTASTS bool `toml:"mta_sts"`
	// Remember: "verified", "tls" or "off" (see docs/tls-policy.md).
	Remember string `toml:"remember"`
	// TLSRPT: send daily RFC 8460 reports to domains that ask for them.
	TLSRPT bool `toml:"tlsrpt"`
	// TrustedResolvers: DNS servers (ip) whose AD bit is believed though
	// not on loopback: the path to them must be protected otherwise.
	TrustedResolvers []string `toml:"trusted_resolvers"`
	// Domains: per destination domain, "verified" or "exempt".
	Domains map[string]TLSPolicyDomain `toml:"domains"`
}

// TLSPolicyDomain is one destination's override.
type TLSPolicyDomain struct {
	Policy string `toml:"policy"` // "verified" or "exempt"
	Reason string `toml:"reason"`
}

func defaultTLSPolicy() TLSPolicy {
	return TLSPolicy{DANE: true, MTASTS: true, Remember: "verified", TLSRPT: false}
}

func (c *Config) validateTLSPolicy(bad func(msg string, key ...string) error) error {
	p := &c.TLSPolicy
	switch p.Remember {
	case "verified", "tls", "off":
	default:
		return bad(`must be "verified", "tls" or "off"`, "tls_policy", "remember")
	}
	for _, r := range p.TrustedResolvers {
		if net.ParseIP(r) == nil {
			return bad("must be IP addresses", "tls_policy", "trusted_resolvers")
		}
	}
	norm := map[string]TLSPolicyDomain{}
	for d, o := range p.Domains {
		switch o.Policy {
		case "verified", "exempt":
		default:
			return bad(`must be "verified" or "exempt"`, "tls_policy", "domains", d, "policy")
		}
		if o.Policy == "exempt" && strings.TrimSpace(o.Reason) == "" {
			return bad("an exemption needs a reason (it is logged)", "tls_policy", "domains", d, "reason")
		}
		norm[strings.ToLower(strings.TrimSuffix(d, "."))] = o
	}
	p.Domains = norm
	return nil
}
