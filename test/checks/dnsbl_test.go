// Package checks drives the real smtp-bs with its DNS checks on ([checks]:
// DNSBL, SPF, DKIM, DMARC) against a DNS server on 127.0.0.1 inside the
// test, and with a real rspamd as a milter.
package checks

import (
	"fmt"
	"strings"
	"testing"

	"smtp-bs/internal/dnstest"
	"smtp-bs/internal/testenv"
)

func TestDNSBLAtConnect(t *testing.T) {
	dns := dnstest.Start(t,
		"2.0.0.127.bl.test. A 127.0.0.2",
		`2.0.0.127.bl.test. TXT "Blocked, see https://bl.test/127.0.0.2"`,
		"2.0.0.127.pbl.test. A 127.0.0.11",
		"4.0.0.127.bl.test. A 127.0.0.2",
		"4.0.0.127.pbl.test. A 127.0.0.11",
		"4.0.0.127.wl.test. A 127.0.9.2",
		"6.0.0.127.bl.test. A 127.255.255.254",
		// pbl.test's 1 leaves bl.test's answer deciding, so it is waited for.
		"5.0.0.127.pbl.test. A 127.0.0.11",
		"6.0.0.127.pbl.test. A 127.0.0.11",
	)
	dns.ServFail("5.0.0.127.bl.test")
	e := testenv.New(t)
	e.Extra["smtp"] = "relay_networks = []"
	e.Extra["checks"] = fmt.Sprintf("resolver = %q", dns.Addr)
	e.Extra["checks.dnsbl"] = `zones = ["bl.test*2", "pbl.test=127.0.0.[10..11]", "wl.test=127.0.[0..255].[1..3]*-5"]
threshold = 3`
	e.WriteConfig()
	addr := e.SocketActivate()

	// Listed twice: 554 5.7.1 with the heavier zone's TXT, 503 after.
	d, code, text := testenv.DialFrom(t, "127.0.0.2", addr)
	if code != 554 || !strings.Contains(text, "5.7.1") || !strings.Contains(text, "blocked using bl.test: Blocked, see https://bl.test/127.0.0.2") {
		t.Fatalf("listed client: greeting %d %q", code, text)
	}
	d.Cmd("EHLO c.test", 503)
	d.Cmd("QUIT", 221)

	// Listed as often but allow-listed; SERVFAIL; an error code; not
	// listed: all served.
	for _, src := range []string{"127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.3"} {
		d, code, text := testenv.DialFrom(t, src, addr)
		if code != 220 {
			t.Fatalf("%s: greeting %d %q", src, code, text)
		}
		d.Cmd("EHLO c.test", 250)
		d.Cmd("QUIT", 221)
	}
	log := e.Log()
	for _, want := range []string{
		"stage=dnsbl peer=127.0.0.2 code=554 score=3 threshold=3 zones=bl.test*2,pbl.test*1",
		" dnsbl peer=127.0.0.4 result=pass score=",
		" dnsbl peer=127.0.0.5 zone=bl.test result=error",
		" dnsbl peer=127.0.0.6 zone=bl.test result=error err=\"answered 127.255.255.254",
	} {
		if !strings.Contains(log, want) && !strings.Contains(strings.ReplaceAll(log, "zones=pbl.test*1,bl.test*2", "zones=bl.test*2,pbl.test*1"), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// Relay clients are never asked about.
	before := len(dns.Log())
	e.Extra["smtp"] = `relay_networks = ["127.0.0.2/32"]`
	e.WriteConfig()
	d, code, text = testenv.DialFrom(t, "127.0.0.2", addr)
	if code != 220 {
		t.Fatalf("relay client: greeting %d %q", code, text)
	}
	d.Cmd("QUIT", 221)
	if n := len(dns.Log()) - before; n != 0 {
		t.Errorf("a relay client was looked up: %v", dns.Log()[before:])
	}
}
