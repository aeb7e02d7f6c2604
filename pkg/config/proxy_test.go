package config

import (
	"net/netip"
	"testing"
	"time"
)

func TestProxy(t *testing.T) {
	c, err := Parse("empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Proxy.Trusted != nil || c.Proxy.IsTrusted(netip.MustParseAddr("127.0.0.1")) {
		t.Errorf("by default no balancer is trusted: %v", c.Proxy.Trusted)
	}
	if c.Proxy.HeaderTimeout.Duration != 10*time.Second {
		t.Errorf("default header_timeout = %v", c.Proxy.HeaderTimeout)
	}
	c, err = Parse("t", []byte("[proxy]\ntrusted = [\"10.1.0.0/16\", \"192.0.2.5\", \"2001:db8::/32\"]\nheader_timeout = \"3s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "10.2.0.1": false, "192.0.2.5": true,
		"192.0.2.6": false, "2001:db8::9": true, "2001:db9::9": false,
	} {
		if got := c.Proxy.IsTrusted(netip.MustParseAddr(addr)); got != want {
			t.Errorf("IsTrusted(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{
		"trusted = [\"10.1.0.1/16\"]", "trusted = [\"balancer.example\"]", "header_timeout = \"0s\"", "header_timeout = \"2m\"",
	} {
		_, err := Parse("t", []byte("[proxy]\n# the balancers\n"+bad+"\n"))
		e, ok := err.(*Error)
		if !ok || e.Line != 3 || (e.Key != "proxy.trusted" && e.Key != "proxy.header_timeout") {
			t.Errorf("%s: got %v, want an error naming the key on line 3", bad, err)
		}
	}
}
