package tlspolicy

import (
	"strings"
	"testing"
)

// FuzzSTSPolicy: a policy body from the network never panics, and what
// parses is a usable policy.
func FuzzSTSPolicy(f *testing.F) {
	f.Add(policySeed)
	f.Fuzz(func(t *testing.T, body string) {
		p, err := parseSTSPolicy(body)
		if err != nil {
			return
		}
		if p.Mode != "enforce" && p.Mode != "testing" && p.Mode != "none" || p.MaxAge < 0 || p.MaxAge > stsMaxAge {
			t.Fatalf("parsed into a bad policy: %+v", p)
		}
		for _, mx := range p.MX {
			p.matchMX(mx)
		}
	})
}

// FuzzTXT: the _mta-sts and _smtp._tls records never panic the parsers.
func FuzzTXT(f *testing.F) {
	f.Add("v=STSv1; id=20190429T010101;")
	f.Add("v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example/x")
	f.Fuzz(func(t *testing.T, s string) {
		txts := strings.Split(s, "\x00")
		if id, err := parseSTSRecord(txts); err == nil && len(id) > 32 {
			t.Fatalf("id %q longer than 32", id)
		}
		parseTLSRPTRecord(txts)
	})
}

const policySeed = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"

func TestParseSTSPolicy(t *testing.T) {
	p, err := parseSTSPolicy(policySeed)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode != "enforce" || p.MaxAge != 604800 || len(p.MX) != 2 {
		t.Fatalf("%+v", p)
	}
	for host, want := range map[string]bool{"mail.example.com": true, "MAIL.example.com.": true, "a.example.net": true,
		"a.b.example.net": false, "example.net": false, "evil.com": false} {
		if p.matchMX(host) != want {
			t.Errorf("matchMX(%s) = %v", host, !want)
		}
	}
	for _, bad := range []string{"version: STSv1\nmode: enforce\nmax_age: 1\n", "mode: enforce\nmx: a\nmax_age: 1\n",
		"version: STSv1\nmode: on\nmx: a\nmax_age: 1\n", "version: STSv1\nmode: enforce\nmx: a\nmax_age: -1\n"} {
		if _, err := parseSTSPolicy(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
