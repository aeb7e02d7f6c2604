package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestChecksDefaultsOff(t *testing.T) {
	c, err := Parse("t", []byte(`hostname = "mx.example"`))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Checks
	if len(k.DNSBL.Zones) != 0 || k.SPF.Enabled || k.DMARC.Enabled || k.SPFOn() || k.DMARC.Reject || k.DMARC.Quarantine {
		t.Errorf("a check is on by default: %+v", k)
	}
	if k.AuthservID != "mx.example" || k.Timeout.Duration != DefaultChecksTimeout || k.DNSBL.Timeout.Duration != DefaultDNSBLTimeout || k.DNSBL.Threshold != 1 {
		t.Errorf("defaults: %+v", k)
	}
	if a := k.SPF.Action("fail"); a != "record" {
		t.Errorf("spf fail defaults to %q", a)
	}
}

func TestChecks(t *testing.T) {
	c, err := Parse("t", []byte(`hostname = "mx.example"
[checks]
resolver = "127.0.0.1:53"
authserv_id = "mx.example.net"
[checks.dnsbl]
zones = ["zen.spamhaus.org*3", "list.dnswl.org=127.0.[0..255].[1..3]*-5"]
threshold = 3
timeout = "2s"
[checks.spf]
enabled = true
policy = { fail = "reject", temperror = "tempfail" }
[checks.dmarc]
enabled = true
reject = true
`))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Checks
	if k.Resolver != "127.0.0.1:53" || k.AuthservID != "mx.example.net" || k.DNSBL.Threshold != 3 || k.DNSBL.Timeout.Duration != 2*time.Second ||
		k.SPF.Action("fail") != "reject" || k.SPF.Action("temperror") != "tempfail" || k.SPF.Action("softfail") != "record" || !k.DMARC.Reject {
		t.Errorf("%+v", k)
	}
	for _, tc := range []struct{ src, key string }{
		{"[checks]\nresolver = \"localhost\"", "checks.resolver"},
		{"[checks.dnsbl]\nzones = [\"bl.test*0\"]", "checks.dnsbl.zones"},
		{"[checks.dnsbl]\nzones = [\"bl.test=127.0.0.[1..\"]", "checks.dnsbl.zones"},
		{"[checks.dnsbl]\nthreshold = -1", "checks.dnsbl.threshold"},
		{"[checks.spf]\npolicy = { pass = \"reject\" }", "checks.spf.policy"},
		{"[checks.spf]\npolicy = { fail = \"drop\" }", "checks.spf.policy"},
		{"[checks]\ntimeout = \"-1s\"", "checks.timeout"},
		{"[checks.dmarc]\nnone = true", "checks.dmarc.none"},
	} {
		_, err := Parse("t", []byte("hostname = \"mx.example\"\n"+tc.src))
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key || ce.Line == 0 {
			t.Errorf("%q: %v, want an error naming %s and its line", tc.src, err, tc.key)
		} else if !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v", tc.src, err)
		}
	}
}
