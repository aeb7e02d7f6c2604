package milter

import (
	"bytes"
	"strings"
	"testing"

	gomilter "github.com/emersion/go-milter"
)

const ours = "Received: from c.example ([127.0.0.1])\r\n\tby mx.example (smtp-bs) with ESMTP id X;\r\n\tSun, 22 Nov 2026 10:00:00 +0000\r\n"

func parsed(t *testing.T, s string) *message {
	t.Helper()
	m, err := parse(strings.NewReader(s), int64(len(s)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func written(t *testing.T, m *message) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := m.writeTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestParse(t *testing.T) {
	cases := []struct {
		name, in string
		fields   []string // name=value
		body     string
	}{
		{"plain", ours + "Subject: hi\r\nTo:   a@b\r\n\r\nbody\r\n", []string{"Received", "Subject= hi", "To=   a@b"}, "body\r\n"},
		{"folded", ours + "Subject: one\r\n two\r\n\r\n", []string{"Received", "Subject= one\r\n two"}, ""},
		{"empty value", ours + "X-Empty:\r\n\r\nb\r\n", []string{"Received", "X-Empty="}, "b\r\n"},
		// A line that is no field ends the header; it is body.
		{"no separator", ours + "Subject: x\r\nnot a header line\r\nmore\r\n", []string{"Received", "Subject= x"}, "not a header line\r\nmore\r\n"},
		{"header only", ours + "Subject: x\r\n", []string{"Received", "Subject= x"}, ""},
		{"no final CRLF", ours + "Subject: x", []string{"Received", "Subject= x"}, ""},
		{"space in name", ours + "Bad Name: x\r\n\r\nb\r\n", []string{"Received"}, "Bad Name: x\r\n\r\nb\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := parsed(t, c.in)
			var got []string
			for _, f := range m.fields {
				if f.name == "Received" {
					got = append(got, f.name)
					continue
				}
				got = append(got, f.name+"="+f.value)
			}
			if strings.Join(got, "|") != strings.Join(c.fields, "|") {
				t.Errorf("fields %q, want %q", got, c.fields)
			}
			var b bytes.Buffer
			b.ReadFrom(m.bodyReader())
			if b.String() != c.body {
				t.Errorf("body %q, want %q", b.String(), c.body)
			}
		})
	}
	// Unchanged fields are written back byte for byte.
	in := ours + "Subject: one\r\n two\r\nTo:   a@b\r\n\r\nbody\r\n"
	if out := written(t, parsed(t, in)); out != in {
		t.Errorf("rewritten:\n%q\nwant\n%q", out, in)
	}
}

func TestApply(t *testing.T) {
	in := ours + "Subject: old\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n"
	res := &Result{Envelope: Envelope{From: "s@c.example", Rcpts: []string{"a@r.example", "b@r.example"}}, msg: parsed(t, in)}
	mods := []gomilter.ModifyAction{
		{Code: gomilter.ActAddHeader, HeaderName: "X-End", HeaderValue: "last"},
		{Code: gomilter.ActChangeHeader, HeaderIndex: 2, HeaderName: "X-A", HeaderValue: "two\n\tfolded"},
		{Code: gomilter.ActChangeHeader, HeaderIndex: 1, HeaderName: "X-A", HeaderValue: ""},
		{Code: gomilter.ActChangeHeader, HeaderIndex: 1, HeaderName: "X-New", HeaderValue: "added by change"},
		{Code: gomilter.ActChangeHeader, HeaderIndex: 3, HeaderName: "X-Gone", HeaderValue: ""},
		{Code: gomilter.ActInsertHeader, HeaderIndex: 0, HeaderName: "X-Top", HeaderValue: "under ours"},
		{Code: gomilter.ActChangeHeader, HeaderIndex: 1, HeaderName: "received", HeaderValue: "forged"},
		{Code: gomilter.ActChangeHeader, HeaderIndex: 1, HeaderName: "Received", HeaderValue: ""},
		{Code: gomilter.ActChangeFrom, From: "<new@c.example>", FromArgs: []string{""}},
		{Code: gomilter.ActAddRcpt, Rcpt: "<c@R.example>"},
		{Code: gomilter.ActAddRcpt, Rcpt: "<a@r.example>"},
		{Code: gomilter.ActDelRcpt, Rcpt: "<B@r.example>"},
		{Code: gomilter.ActReplBody, Body: []byte("new\nbody")},
		{Code: gomilter.ActReplBody, Body: []byte(" continued\n")},
		{Code: gomilter.ActQuarantine, Reason: "why not"},
	}
	next, err := apply(res, mods, false)
	if err != nil {
		t.Fatal(err)
	}
	want := ours + "X-Top: under ours\r\nSubject: old\r\nX-A: two\r\n\tfolded\r\nX-End: last\r\nX-New: added by change\r\n\r\nnew\r\nbody continued\r\n"
	if got := written(t, next.msg); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if next.Envelope.From != "new@c.example" || strings.Join(next.Envelope.Rcpts, " ") != "a@r.example c@r.example" {
		t.Errorf("envelope %+v", next.Envelope)
	}
	if next.Quarantine != "why not" || !next.msg.changed {
		t.Errorf("quarantine %q changed %v", next.Quarantine, next.msg.changed)
	}
	// The original is untouched: a failed milter changes nothing.
	if got := written(t, res.msg); got != in || len(res.Envelope.Rcpts) != 2 {
		t.Errorf("apply changed its input")
	}

	// With SMFIP_HDR_LEADSPC the milter writes the space itself.
	next, err = apply(res, []gomilter.ModifyAction{{Code: gomilter.ActAddHeader, HeaderName: "X-L", HeaderValue: "\tlead"}}, true)
	if err != nil || !strings.Contains(written(t, next.msg), "X-L:\tlead\r\n") {
		t.Errorf("leading space: %v\n%s", err, written(t, next.msg))
	}
}

func TestApplyRefuses(t *testing.T) {
	res := &Result{Envelope: Envelope{From: "s@c.example", Rcpts: []string{"a@r.example"}}, msg: parsed(t, ours+"\r\n")}
	for _, m := range []gomilter.ModifyAction{
		{Code: gomilter.ActAddHeader, HeaderName: "Bad Name", HeaderValue: "x"},
		{Code: gomilter.ActAddHeader, HeaderName: "X-Inject", HeaderValue: "x\nBcc: victim@example.org"},
		{Code: gomilter.ActAddHeader, HeaderName: "X-Nul", HeaderValue: "a\x00b"},
		{Code: gomilter.ActAddRcpt, Rcpt: "<user%other@relay.example>"},
		{Code: gomilter.ActAddRcpt, Rcpt: "<>"},
		{Code: gomilter.ActChangeFrom, From: "<no-domain>"},
	} {
		if _, err := apply(res, []gomilter.ModifyAction{m}, false); err == nil {
			t.Errorf("%c %+v: applied, want refused", m.Code, m)
		}
	}
	if next, err := apply(res, []gomilter.ModifyAction{{Code: gomilter.ActChangeFrom, From: "<>"}}, false); err != nil || next.Envelope.From != "" {
		t.Errorf("a null sender: %v %q", err, next.Envelope.From)
	}
}

func TestReplyText(t *testing.T) {
	cases := []struct {
		code   int
		text   string
		status [3]int
		out    string
	}{
		{550, "5.7.1 Go away", [3]int{5, 7, 1}, "Go away"},
		{550, "Go away", [3]int{}, "Go away"},
		{451, "5.7.1 class mismatch", [3]int{}, "class mismatch"},
		{550, "5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third", [3]int{5, 7, 1}, "first second third"},
		{550, "ctl\x01char", [3]int{}, "ctl char"},
	}
	for _, c := range cases {
		st, out := replyText(c.code, c.text)
		if st != c.status || out != c.out {
			t.Errorf("%d %q: got %v %q, want %v %q", c.code, c.text, st, out, c.status, c.out)
		}
	}
}

func TestCRLF(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb\n":     "a\r\nb\r\n",
		"a\r\nb":     "a\r\nb\r\n",
		"a\rb\r\n":   "a\r\nb\r\n",
		"":           "",
		"\n\n":       "\r\n\r\n",
		"x\r\n\r\n.": "x\r\n\r\n.\r\n",
	} {
		if got := string(crlf([]byte(in))); got != want {
			t.Errorf("crlf(%q) = %q, want %q", in, got, want)
		}
	}
}
