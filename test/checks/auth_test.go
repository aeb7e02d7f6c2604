package checks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/dnstest"
	"smtp-bs/internal/testenv"
)

// authEnv is smtp-bs for mx.test.example with [checks] pointed at dns;
// clients on 127.0.0.0/8 may not relay, so every check applies to them.
func authEnv(t *testing.T, dns *dnstest.Server, spf, dmarc string) (*testenv.Env, string) {
	t.Helper()
	e := testenv.New(t)
	e.Extra["smtp"] = `relay_networks = ["127.0.0.9/32"]
local_domains = ["mx.test.example"]`
	e.Extra["checks"] = fmt.Sprintf("resolver = %q\nauthserv_id = \"mx.test.example\"", dns.Addr)
	if spf != "" {
		e.Extra["checks.spf"] = spf
	}
	if dmarc != "" {
		e.Extra["checks.dmarc"] = dmarc
	}
	e.WriteConfig()
	return e, e.SocketActivate()
}

// send runs one transaction from src; want is the code after the data
// (or after MAIL, when that is refused). It returns the last reply.
func send(t *testing.T, addr, src, from, body string, wantMail, want int) string {
	t.Helper()
	d, code, text := testenv.DialFrom(t, src, addr)
	if code != 220 {
		t.Fatalf("greeting %d %s", code, text)
	}
	d.Cmd("EHLO client.test", 250)
	if r := d.Cmdf(wantMail, "MAIL FROM:<%s>", from); wantMail != 250 {
		d.Cmd("QUIT", 221)
		return r
	}
	d.Cmd("RCPT TO:<b@mx.test.example>", 250)
	d.Cmd("DATA", 354)
	d.Send(strings.ReplaceAll(body, "\r\n.", "\r\n..") + ".\r\n")
	code, r := d.Reply()
	if code != want {
		t.Fatalf("from %s: after DATA %q, want %d", from, r, want)
	}
	d.Cmd("QUIT", 221)
	return r
}

// queued returns the one message queued since before (a list of IDs).
func queued(t *testing.T, e *testenv.Env, before []string) string {
	t.Helper()
	ids := e.Queued()
	seen := map[string]bool{}
	for _, id := range before {
		seen[id] = true
	}
	for _, id := range ids {
		if !seen[id] {
			_, data := e.Message(id)
			return data
		}
	}
	t.Fatalf("nothing new queued:\n%s", e.Log())
	return ""
}

func plain(from, subject string) string {
	return "From: <" + from + ">\r\nTo: b@mx.test.example\r\nSubject: " + subject + "\r\n" +
		"Authentication-Results: mx.test.example; spf=pass smtp.mailfrom=forged@example.com\r\n" +
		"Authentication-Results: other.example; spf=none\r\n\r\nHello.\r\n"
}

func TestSPFPolicy(t *testing.T) {
	dns := dnstest.Start(t,
		`pass.test. TXT "v=spf1 ip4:127.0.0.2 -all"`,
		`fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`soft.test. TXT "v=spf1 ~all"`,
		`perm.test. TXT "v=spf1 bogus:x -all"`,
	)
	dns.ServFail("temp.test")
	e, addr := authEnv(t, dns, `enabled = true
policy = { fail = "reject", temperror = "tempfail", permerror = "reject" }`, "")

	r := send(t, addr, "127.0.0.2", "a@fail.test", "", 550, 0)
	if !strings.Contains(r, "5.7.23") || !strings.Contains(r, "fail.test") {
		t.Errorf("SPF fail: %q", r)
	}
	if r := send(t, addr, "127.0.0.2", "a@temp.test", "", 451, 0); !strings.Contains(r, "4.7.24") {
		t.Errorf("SPF temperror: %q", r)
	}
	if r := send(t, addr, "127.0.0.2", "a@perm.test", "", 550, 0); !strings.Contains(r, "5.7.24") {
		t.Errorf("SPF permerror: %q", r)
	}
	for _, tc := range []struct{ from, want string }{
		{"a@pass.test", "spf=pass smtp.mailfrom=a@pass.test"},
		{"a@soft.test", "spf=softfail smtp.mailfrom=a@soft.test"}, // recorded, not refused
		{"a@none.test", "spf=none smtp.mailfrom=a@none.test"},
	} {
		before := e.Queued()
		send(t, addr, "127.0.0.2", tc.from, plain(tc.from, "spf"), 250, 250)
		data := queued(t, e, before)
		// Ours right after our Received; the forged one with our id gone;
		// another host's kept.
		want := "Authentication-Results: mx.test.example;\r\n\t" + tc.want + "\r\n"
		if i := strings.Index(data, want); i < 0 || !strings.HasPrefix(data, "Received: ") || strings.Index(data, "\r\nAuthentication-Results") != i-2 {
			t.Errorf("%s: no %q after the Received header:\n%s", tc.from, want, data)
		}
		if strings.Contains(data, "forged@example.com") || !strings.Contains(data, "Authentication-Results: other.example; spf=none") {
			t.Errorf("%s: the forged field is kept or the other host's removed:\n%s", tc.from, data)
		}
		if strings.Contains(data, "dkim=") {
			t.Errorf("%s: dkim recorded without [checks.dmarc]:\n%s", tc.from, data)
		}
	}
	// A relay client is not checked: no SPF, no header of ours.
	before := e.Queued()
	nq := len(dns.Log())
	send(t, addr, "127.0.0.9", "a@fail.test", plain("a@fail.test", "relay"), 250, 250)
	if data := queued(t, e, before); strings.Contains(data, "Authentication-Results: mx.test.example") {
		t.Errorf("a relay client's message was checked:\n%s", data)
	}
	if len(dns.Log()) != nq {
		t.Errorf("DNS asked about a relay client's sender: %v", dns.Log()[nq:])
	}
	if log := e.Log(); !strings.Contains(log, "spf peer=127.0.0.2 from=<a@soft.test> result=softfail domain=soft.test") {
		t.Errorf("SPF result not logged:\n%s", log)
	}
}

// DKIM signed by OpenDKIM, verified by smtp-bs, and DMARC from both.
func TestDKIMAndDMARC(t *testing.T) {
	sig := startSigner(t, "example.com", "s1")
	dns := dnstest.Start(t,
		`pass.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.example.com. TXT "v=DMARC1; p=reject"`,
		`_dmarc.q.example. TXT "v=DMARC1; p=quarantine"`,
		`bounces.example.com. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
	)
	dns.Add(t, fmt.Sprintf(`s1._domainkey.example.com. TXT %q`, sig.record))
	e, addr := authEnv(t, dns, "", "enabled = true\nreject = true\nquarantine = true")

	msg := func(from, subject string) string {
		return "Received: from signer.test by signer.test; Sun, 6 Dec 2026 12:00:00 +0000\r\n" +
			"From: Ann <" + from + ">\r\nTo: b@mx.test.example\r\nDate: Sun, 6 Dec 2026 12:00:00 +0000\r\n" +
			"Message-ID: <" + subject + "@example.com>\r\nSubject: " + subject + "\r\n\r\nSigned body.\r\n"
	}
	signed := sig.sign(t, "a@example.com", msg("a@example.com", "signed"))

	// Signed, and MAIL FROM from another domain (SPF passes for it, not
	// aligned): DKIM alone passes DMARC.
	before := e.Queued()
	send(t, addr, "127.0.0.2", "x@pass.test", signed, 250, 250)
	data := queued(t, e, before)
	for _, want := range []string{"spf=pass smtp.mailfrom=x@pass.test", "dkim=pass header.d=example.com", "dmarc=pass header.from=example.com"} {
		if !strings.Contains(data, want) {
			t.Errorf("signed: no %q:\n%s\n%s", want, data, e.Log())
		}
	}
	// One changed byte of the body: dkim=fail, DMARC fails, p=reject is
	// honoured.
	tampered := strings.Replace(signed, "Signed body.", "Signed body!", 1)
	if r := send(t, addr, "127.0.0.2", "x@pass.test", tampered, 250, 550); !strings.Contains(r, "5.7.1") || !strings.Contains(r, "DMARC") {
		t.Errorf("tampered: %q", r)
	}
	if !strings.Contains(e.Log(), "dkim=fail:example.com") {
		t.Errorf("dkim=fail not logged:\n%s", e.Log())
	}
	// Unsigned, but SPF aligned by organizational domain: pass.
	before = e.Queued()
	send(t, addr, "127.0.0.2", "x@bounces.example.com", msg("a@example.com", "spf-aligned"), 250, 250)
	if data := queued(t, e, before); !strings.Contains(data, "dmarc=pass") || !strings.Contains(data, "dkim=none") {
		t.Errorf("SPF-aligned: %s", data)
	}
	// p=quarantine: held, not queued.
	before = e.Queued()
	send(t, addr, "127.0.0.2", "x@pass.test", msg("a@q.example", "quarantine"), 250, 250)
	if len(e.Queued()) != len(before) {
		t.Errorf("a quarantined message was queued")
	}
	held, _ := filepath.Glob(filepath.Join(e.SpoolDir, "hold", "*"))
	if len(held) == 0 || !strings.Contains(e.Log(), `hold id=`) {
		t.Errorf("nothing held:\n%s", e.Log())
	}
	_ = os.Remove
}

// Off, DMARC is recorded only: p=reject does not refuse.
func TestDMARCRecordOnly(t *testing.T) {
	dns := dnstest.Start(t, `_dmarc.example.com. TXT "v=DMARC1; p=reject"`)
	e, addr := authEnv(t, dns, "", "enabled = true")
	before := e.Queued()
	send(t, addr, "127.0.0.2", "a@example.com", plain("a@example.com", "unsigned"), 250, 250)
	if data := queued(t, e, before); !strings.Contains(data, "dmarc=fail policy.dmarc=reject header.from=example.com") {
		t.Errorf("not recorded:\n%s", data)
	}
}
