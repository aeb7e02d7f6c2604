package dsn

import (
	"bufio"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"smtp-bs/pkg/address"
)

// part is one part of a parsed report.
type part struct {
	ctype string
	cte   string
	body  string // decoded (quoted-printable is undone by multipart)
}

// parseReport reads a report as a mail reader would and returns the
// report-type and the parts.
func parseReport(t *testing.T, raw []byte) (string, []part) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("report does not parse: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part{ctype: p.Header.Get("Content-Type"), cte: p.Header.Get("Content-Transfer-Encoding"), body: string(b)})
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	return params["report-type"], parts
}

// fields reads the per-recipient groups of a delivery-status body.
func fields(t *testing.T, body string) []textproto.MIMEHeader {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(strings.NewReader(body)))
	var out []textproto.MIMEHeader
	for {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			out = append(out, h)
		}
		if err != nil {
			break
		}
	}
	return out
}

const original = "From: Zoë <s@example.org>\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\nbody\r\n"

func report(sender, rcpt, reply string, smtputf8 bool) Report {
	return Report{Hostname: "mx.example.org", QueueID: "Q1", MessageID: "b1", Sender: sender,
		Date: time.Unix(1e9, 0), Action: "failed", SMTPUTF8: smtputf8,
		Failures: []Failure{{Rcpt: rcpt, Reply: reply, RemoteMTA: "mx.example.net"}}}
}

func TestASCIIReport(t *testing.T) {
	rt, parts := parseReport(t, Build(report("s@example.org", "bob@example.net", "mx.example.net said: 550 5.1.1 no such user", false), strings.NewReader(original)))
	if rt != "delivery-status" || !strings.HasPrefix(parts[1].ctype, "message/delivery-status") {
		t.Fatalf("report-type %q, part %q", rt, parts[1].ctype)
	}
	if strings.Contains(parts[0].body, "It is attached below") || !strings.Contains(parts[0].body, "header section is attached below") {
		t.Errorf("the text promises what is not there: %q", parts[0].body)
	}
	f := fields(t, parts[1].body)
	if len(f) != 2 || f[1].Get("Final-Recipient") != "rfc822; bob@example.net" || f[1].Get("Status") != "5.1.1" ||
		f[1].Get("Diagnostic-Code") != "smtp; 550 5.1.1 no such user" {
		t.Errorf("fields %v", f)
	}
}

// A UTF-8 recipient, with an ASCII sender and envelope: the report stays
// message/delivery-status and all ASCII, the address in utf-8-addr-xtext.
func TestUTF8RecipientInASCIIReport(t *testing.T) {
	raw := Build(report("s@example.org", "zoë@example.net", "mx.example.net said: 550 5.1.1 <zoë@example.net>: nobody", false), strings.NewReader(original))
	rt, parts := parseReport(t, raw)
	if rt != "delivery-status" || parts[1].ctype != "message/delivery-status" {
		t.Fatalf("report-type %q, part %q", rt, parts[1].ctype)
	}
	if !address.IsASCII(parts[1].body) {
		t.Errorf("message/delivery-status carries UTF-8:\n%s", parts[1].body)
	}
	f := fields(t, parts[1].body)
	if got := f[1].Get("Final-Recipient"); got != `utf-8; zo\x{EB}@example.net` {
		t.Errorf("Final-Recipient %q", got)
	}
	if got := f[1].Get("Diagnostic-Code"); got != `smtp; 550 5.1.1 <zo\x{EB}@example.net>: nobody` {
		t.Errorf("Diagnostic-Code %q", got)
	}
	if parts[0].cte != "" || !strings.Contains(parts[0].body, "<zoë@example.net>") {
		t.Errorf("the notification does not name the recipient readably: %q", parts[0].body)
	}
	before, _, _ := strings.Cut(string(raw), "Content-Description: Undelivered")
	if !address.IsASCII(before) {
		t.Error("the report has raw UTF-8 outside the returned headers")
	}
}

// The original envelope needed SMTPUTF8: the report is global (RFC 6533),
// with UTF-8 as is.
func TestGlobalReport(t *testing.T) {
	rt, parts := parseReport(t, Build(report("zoë@example.org", "zoë@example.net", "mx.example.net said: 550 5.1.1 nobody", true), strings.NewReader(original)))
	if rt != "global-delivery-status" || parts[1].ctype != "message/global-delivery-status" {
		t.Fatalf("report-type %q, part %q", rt, parts[1].ctype)
	}
	f := fields(t, parts[1].body)
	if got := f[1].Get("Final-Recipient"); got != "utf-8; zoë@example.net" {
		t.Errorf("Final-Recipient %q", got)
	}
	if parts[2].ctype != "message/global-headers" || !strings.Contains(parts[2].body, "From: Zoë") {
		t.Errorf("headers part %q: %q", parts[2].ctype, parts[2].body)
	}
}

func TestXtext(t *testing.T) {
	for in, want := range map[string]string{
		"a@b":      "a@b",
		"zoë@x":    `zo\x{EB}@x`,
		"a+b=c\\d": `a\x{2B}b\x{3D}c\x{5C}d`,
		"日本@例え.jp": `\x{65E5}\x{672C}@\x{4F8B}\x{3048}.jp`,
	} {
		if got := xtext(in); got != want {
			t.Errorf("xtext(%q) = %q, want %q", in, got, want)
		}
	}
}
