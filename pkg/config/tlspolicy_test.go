package config

import (
	"strings"
	"testing"
)

func TestTLSPolicy(t *testing.T) {
	c, err := Parse("t", []byte(`[tls_policy]
dane = false
remember = "tls"
trusted_resolvers = ["192.0.2.53"]
domains = { "partner.example." = { policy = "verified" }, "broken.example" = { policy = "exempt", reason = "stale TLSA, ticket 7" } }
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.TLSPolicy
	if p.DANE || !p.MTASTS || p.Remember != "tls" || p.Domains["partner.example"].Policy != "verified" || p.Domains["broken.example"].Reason == "" {
		t.Fatalf("%+v", p)
	}
	d, _ := Parse("t", nil)
	if !d.TLSPolicy.DANE || !d.TLSPolicy.MTASTS || d.TLSPolicy.Remember != "verified" || d.TLSPolicy.TLSRPT {
		t.Fatalf("defaults %+v", d.TLSPolicy)
	}
	for src, want := range map[string]string{
		"[tls_policy]\nremember = \"always\"\n":                                 "tls_policy.remember",
		"[tls_policy]\ndomains = { \"a.example\" = { policy = \"exempt\" } }\n": "needs a reason",
		"[tls_policy]\ndomains = { \"a.example\" = { policy = \"dane\" } }\n":   "must be \"verified\" or \"exempt\"",
		"[tls_policy]\ntrusted_resolvers = [\"resolver.example\"]\n":            "must be IP addresses",
	} {
		if _, err := Parse("t", []byte(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
