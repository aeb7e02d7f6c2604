package session_test

import (
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/pkg/dnsclient"
	"smtp-bs/pkg/session"
)

// An authenticated submission is not checked: SPF that refuses the same
// sender from an anonymous client lets it through after AUTH, no DNS
// query is made for it, and its message carries no verdict of ours (a
// forged one is removed all the same).
func TestAuthenticatedSkipsChecks(t *testing.T) {
	dns := dnstest.Start(t, `mx.test.example. TXT "v=spf1 -all"`)
	h := newTLSHarness(t, "relay_networks = []")
	h.srv.Checks = &session.Checks{Resolver: dnsclient.New(dns.Addr)}
	c := &h.srv.Config.Checks
	c.SPF.Enabled, c.SPF.Policy, c.AuthservID = true, map[string]string{"fail": "reject"}, testHost
	c.Timeout.Duration = 10 * time.Second

	d := h.dial(session.Client{Addr: loopback.Addr})
	d.Cmd("EHLO c.test", 250)
	td, _ := h.startTLS(d)
	td.Cmd("EHLO c.test", 250)
	if txt := td.Cmd("MAIL FROM:<alice@mx.test.example>", 550); !strings.Contains(txt, "5.7.23") {
		t.Fatalf("anonymous: %q", txt)
	}
	asked := dns.Queries()
	td.Cmd("AUTH PLAIN "+plain("alice", "alice-pw"), 235)
	td.Cmd("MAIL FROM:<alice@mx.test.example>", 250)
	td.Cmd("RCPT TO:<bob@mx.test.example>", 250)
	td.Cmd("DATA", 354)
	td.Send("Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=forged\r\nSubject: x\r\n\r\nhi\r\n")
	td.Cmd(".", 250)
	td.Cmd("QUIT", 221)
	if n := dns.Queries() - asked; n != 0 {
		t.Errorf("%d DNS queries for an authenticated submission: %v", n, dns.Log())
	}
	q := h.queued()
	if len(q) != 1 {
		t.Fatalf("%d queued", len(q))
	}
	for _, data := range q {
		if strings.Contains(string(data), "Authentication-Results") {
			t.Errorf("an authenticated submission carries Authentication-Results:\n%s", data)
		}
	}
}
