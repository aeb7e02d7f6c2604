package tlspolicy

import (
	"context"
	"strings"
	"testing"

	"smtp-bs/internal/dnstest"
)

func TestTrustedResolver(t *testing.T) {
	for _, c := range []struct {
		host    string
		trusted []string
		want    bool
	}{
		{"127.0.0.1", nil, true},
		{"127.0.0.53", nil, true},
		{"::1", nil, true},
		{"192.0.2.1", nil, false},
		{"192.0.2.1", []string{"192.0.2.1"}, true},
		{"192.0.2.1", []string{"192.0.2.2"}, false},
	} {
		if got := TrustedResolver(c.host, c.trusted); got != c.want {
			t.Errorf("TrustedResolver(%s, %v) = %v, want %v", c.host, c.trusted, got, c.want)
		}
	}
}

// The AD bit of a resolver that is not trusted counts for nothing: signed
// TLSA records seen through it are not applied.
func TestUntrustedResolverIgnoresAD(t *testing.T) {
	dns := dnstest.Start(t)
	dns.Add(t, "example.test. 300 IN MX 10 mx.example.test.", "mx.example.test. 300 IN A 127.0.0.1",
		"_25._tcp.mx.example.test. 300 IN TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000")
	dns.Sign("example.test")
	for _, trust := range []bool{true, false} {
		r := &resolver{addr: dns.Addr, trustAD: trust, timeout: 5e9}
		got := r.lookupDANE(context.Background(), "example.test", "mx.example.test", "25")
		want := daneUsable
		if !trust {
			want = daneNone
		}
		if got.state != want {
			t.Errorf("trustAD=%v: state %d (%s), want %d", trust, got.state, got.note, want)
		}
	}
}

// An address literal gets the configured mode: no DNS question is asked
// of it (a failing one would defer mail to [192.0.2.1] for nothing).
func TestAddressLiteralNoPolicy(t *testing.T) {
	e, err := New(Options{DANE: true, MTASTS: true, Resolver: "192.0.2.1:53", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"[192.0.2.1]", "192.0.2.1", "IPv6:2001:db8::1", "../x"} {
		d := e.Decide(context.Background(), host, host, Opportunistic)
		if d.Mode != Opportunistic || d.Defer != "" || d.Source != "config" {
			t.Errorf("%s: %s", host, d)
		}
	}
}

// Overrides: an exempt domain ignores its signed TLSA records (logged
// once per run with its reason); a "verified" one demands a verified
// certificate though it publishes nothing.
func TestOverrides(t *testing.T) {
	dns := dnstest.Start(t)
	dns.Add(t, "example.test. 300 IN MX 10 mx.example.test.", "mx.example.test. 300 IN A 127.0.0.1",
		"_25._tcp.mx.example.test. 300 IN TLSA 3 1 1 0000000000000000000000000000000000000000000000000000000000000000",
		"partner.test. 300 IN MX 10 mx.partner.test.", "mx.partner.test. 300 IN A 127.0.0.1",
		// Signed, with only TLSA usages DANE cannot use (PKIX-TA/EE):
		// unusable, yet the override's verified still holds.
		"_25._tcp.mx.partner.test. 300 IN TLSA 1 1 1 0000000000000000000000000000000000000000000000000000000000000000")
	dns.Sign("example.test")
	dns.Sign("partner.test")
	var logged []string
	e, err := New(Options{DANE: true, Resolver: dns.Addr, Dir: t.TempDir(), Overrides: map[string]Override{
		"example.test": {Policy: "exempt", Reason: "stale TLSA, ticket 7"},
		"partner.test": {Policy: "verified", Reason: "contract"},
	}, Log: func(ev string, kv ...any) { logged = append(logged, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		d := e.Decide(context.Background(), "example.test", "mx.example.test", Opportunistic)
		if d.Mode != Opportunistic || !strings.Contains(strings.Join(d.Notes, " "), "stale TLSA, ticket 7") {
			t.Fatalf("exempt: %s %v", d, d.Notes)
		}
	}
	if len(logged) != 1 || logged[0] != "tls_policy_exempt" {
		t.Errorf("logged %v, want one tls_policy_exempt", logged)
	}
	if d := e.Decide(context.Background(), "partner.test", "mx.partner.test", Opportunistic); d.Mode != RequiredVerified || d.Source != "override" {
		t.Errorf("verified override: %s", d)
	}
}
