package check

import (
	"strings"
	"testing"

	"smtp-bs/internal/dnstest"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/tlspolicy"
)

// -check warns when DANE is on but the resolver is not a local validating one.
func TestTLSPolicyResolverWarning(t *testing.T) {
	dns := dnstest.Start(t)
	dns.Add(t, ". 300 IN NS a.root-servers.net.")
	run := func(resolver string) *Report {
		cfg, err := config.Parse("test", []byte("[delivery]\nresolver = \""+resolver+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		au := &auditor{Audit: &Audit{Config: cfg, ProbeResolver: tlspolicy.ProbeResolver}, chained: map[string]bool{}, reported: map[string]bool{}}
		au.tlsPolicy()
		return &au.rep
	}
	if rep := run("192.0.2.1:53"); len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "neither on loopback nor in [tls_policy] trusted_resolvers") {
		t.Errorf("remote resolver: notes %q", rep.Notes)
	}
	if rep := run(dns.Addr); len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "does not validate DNSSEC") {
		t.Errorf("non-validating local resolver: notes %q", rep.Notes)
	}
	dns.Sign(".")
	if rep := run(dns.Addr); len(rep.Notes) != 0 || len(rep.OK) != 1 || !strings.Contains(rep.OK[0], "validates DNSSEC") {
		t.Errorf("validating local resolver: notes %q, ok %q", rep.Notes, rep.OK)
	}
}
