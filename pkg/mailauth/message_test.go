package mailauth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"smtp-bs/internal/dnstest"
	"smtp-bs/pkg/dnsclient"
)

func sign(t *testing.T, key ed25519.PrivateKey, domain, msg string) string {
	t.Helper()
	var b bytes.Buffer
	if err := dkim.Sign(&b, strings.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: "s1", Signer: key}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func msg(from string) string {
	return "Received: from c.test by mx.test; Sun, 6 Dec 2026 12:00:00 +0000\r\n" +
		"From: Ann <" + from + ">\r\nTo: b@mx.test\r\nSubject: hello\r\n\r\nbody\r\n"
}

// DMARC alignment: relaxed and strict, by SPF and by DKIM, a subdomain's
// policy from its organizational domain, and the cases that fail.
func TestDKIMAndDMARC(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	rec := `"v=DKIM1; k=ed25519; p=` + base64.StdEncoding.EncodeToString(pub) + `"`
	srv := dnstest.Start(t,
		"s1._domainkey.example.com. TXT "+rec,
		"s1._domainkey.mail.example.com. TXT "+rec,
		"s1._domainkey.other.org. TXT "+rec,
		`_dmarc.example.com. TXT "v=DMARC1; p=reject; sp=quarantine"`,
		`_dmarc.strict.com. TXT "v=DMARC1; p=reject; adkim=s; aspf=s"`,
		"s1._domainkey.strict.com. TXT "+rec,
		"s1._domainkey.sub.strict.com. TXT "+rec,
		`_dmarc.none.net. TXT "v=DMARC1; p=none"`,
	)
	srv.ServFail("_dmarc.temp.com")
	res := dnsclient.New(srv.Addr)
	pass := func(dom string) SPF { return SPF{Result: "pass", Domain: dom} }
	for _, tc := range []struct {
		name        string
		msg         string
		spf         SPF
		dkim, dmarc string
		policy      string
	}{
		{"dkim aligned", sign(t, key, "example.com", msg("a@example.com")), SPF{Result: "fail", Domain: "example.com"}, "pass", "pass", ""},
		{"dkim relaxed", sign(t, key, "mail.example.com", msg("a@example.com")), SPF{Result: "none"}, "pass", "pass", ""},
		{"spf relaxed", msg("a@news.example.com"), pass("bounce.example.com"), "", "pass", ""},
		{"dkim other domain", sign(t, key, "other.org", msg("a@example.com")), SPF{Result: "none"}, "pass", "fail", "reject"},
		{"subdomain policy", msg("a@news.example.com"), SPF{Result: "softfail", Domain: "news.example.com"}, "", "fail", "quarantine"},
		{"strict dkim", sign(t, key, "sub.strict.com", msg("a@strict.com")), SPF{Result: "none"}, "pass", "fail", "reject"},
		{"strict spf", msg("a@strict.com"), pass("sub.strict.com"), "", "fail", "reject"},
		{"strict exact", msg("a@strict.com"), pass("strict.com"), "", "pass", ""},
		{"tampered", strings.Replace(sign(t, key, "example.com", msg("a@example.com")), "body", "b0dy", 1), SPF{Result: "none"}, "fail", "fail", "reject"},
		{"no key", sign(t, key, "nokey.com", msg("a@nokey.com")), SPF{Result: "none"}, "permerror", "none", ""},
		{"p=none", msg("a@none.net"), SPF{Result: "fail", Domain: "none.net"}, "", "fail", "none"},
		{"temperror", msg("a@temp.com"), SPF{Result: "none"}, "", "temperror", ""},
		{"two From", "From: a@example.com\r\nFrom: b@example.com\r\n\r\nx\r\n", SPF{Result: "none"}, "", "permerror", ""},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := CheckMessage(ctx, res, strings.NewReader(tc.msg), tc.spf)
		cancel()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		gotDKIM := ""
		if len(r.DKIM) > 0 {
			gotDKIM = r.DKIM[0].Result
		}
		if gotDKIM != tc.dkim || r.DMARC.Result != tc.dmarc || r.DMARC.Policy != tc.policy {
			t.Errorf("%s: dkim=%q dmarc=%q policy=%q (%v), want %q %q %q", tc.name, gotDKIM, r.DMARC.Result, r.DMARC.Policy, r.DMARC.Err, tc.dkim, tc.dmarc, tc.policy)
		}
	}
}

func TestHeader(t *testing.T) {
	r := Results{
		SPF:     SPF{Result: "pass", Identity: "a@example.com", Helo: "c.test", Domain: "example.com"},
		DKIM:    []DKIM{{Result: "pass", Domain: "example.com", AUID: "@example.com"}, {Result: "fail", Domain: "x.org"}},
		DMARC:   DMARC{Result: "pass", From: "example.com"},
		Checked: true,
	}
	want := "Authentication-Results: mx.test;\r\n\tspf=pass smtp.mailfrom=a@example.com;\r\n\tdkim=pass header.d=example.com header.i=@example.com;\r\n" +
		"\tdkim=fail header.d=x.org;\r\n\tdmarc=pass header.from=example.com\r\n"
	if got := r.Header("mx.test"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	r = Results{SPF: SPF{Result: "none", Identity: "postmaster@c.test", Helo: "c.test"}, DMARC: DMARC{Result: "fail", Policy: "reject", From: "a b.org"}, Checked: true}
	want = "Authentication-Results: mx.test;\r\n\tspf=none smtp.helo=c.test;\r\n\tdkim=none;\r\n\tdmarc=fail policy.dmarc=reject header.from=\"a b.org\"\r\n"
	if got := r.Header("mx.test"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// SPF alone: no word of DKIM or DMARC, which were not looked at.
	r = Results{SPF: SPF{Result: "fail", Identity: "a@b.org", Helo: "c.test"}}
	want = "Authentication-Results: mx.test;\r\n\tspf=fail smtp.mailfrom=a@b.org\r\n"
	if got := r.Header("mx.test"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAuthservID(t *testing.T) {
	for in, want := range map[string]string{
		" mx.test; spf=pass":               "mx.test",
		"mx.test 1; none":                  "mx.test",
		" (comment (nested)) mx.test;none": "mx.test",
		"\r\n\tmx.test\r\n\t; dkim=pass":   "mx.test",
		` "mx.test"; none`:                 "mx.test",
		"(unclosed":                        "",
		"":                                 "",
	} {
		if got := AuthservID(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestRewrite(t *testing.T) {
	in := "Received: from c.test by mx.test\r\n\tid 1; Sun, 6 Dec 2026\r\n" +
		"Authentication-Results: MX.test;\r\n\tdkim=pass header.d=forged.example\r\n" +
		"Authentication-Results: (ours?) mx.test; spf=pass\r\n" +
		"Authentication-Results: other.example; spf=fail\r\n" +
		"Subject: x\r\n\r\n" +
		"Authentication-Results: mx.test; in the body\r\n"
	var out bytes.Buffer
	n, err := Rewrite(&out, strings.NewReader(in), "mx.test", "Authentication-Results: mx.test; dkim=none\r\n")
	if err != nil || n != 2 {
		t.Fatalf("removed %d: %v", n, err)
	}
	want := "Received: from c.test by mx.test\r\n\tid 1; Sun, 6 Dec 2026\r\n" +
		"Authentication-Results: mx.test; dkim=none\r\n" +
		"Authentication-Results: other.example; spf=fail\r\n" +
		"Subject: x\r\n\r\n" +
		"Authentication-Results: mx.test; in the body\r\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}
