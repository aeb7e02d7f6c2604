package delivery

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/tlspolicy"
)

// A domain once reached with a verified certificate is not accepted later
// with less: a next hop that strips STARTTLS, or shows a certificate no CA
// vouches for, gets nothing until the admin forgets the domain.
func TestRememberedLevelDowngradeDeferred(t *testing.T) {
	w := newDANEWorld(t, false, "mx.example.test")
	o := tlspolicy.Options{RootCAs: w.ca.Pool} // no DANE, no MTA-STS: only what was seen
	w.start(t, o)
	if res := deliver(t, w.tr, "u@example.test"); res[0].Status != spool.Sent {
		t.Fatalf("first delivery: %s %s", res[0].Status, res[0].Reply)
	}
	// The next pass meets a next hop without STARTTLS (the attacker's).
	stripped := testenv.NewSink(t)
	w.sink = stripped
	_, w.port, _ = strings.Cut(stripped.Addr, ":")
	w.start(t, o)
	res := deliver(t, w.tr, "u@example.test")
	if res[0].Status != spool.Deferred || len(stripped.Messages()) != 0 {
		t.Fatalf("downgraded delivery: %s %q, %d sent in clear; want deferred", res[0].Status, res[0].Reply, len(stripped.Messages()))
	}
	if out := w.tr.Explain(context.Background(), "u@example.test"); !strings.Contains(out, "required-verified (remembered)") {
		t.Errorf("Explain does not show the remembered level:\n%s", out)
	}
	// The admin clears it (qrun -tls-forget): delivered again, opportunistically.
	if ok, err := tlspolicy.Forget(w.dir, "EXAMPLE.test"); !ok || err != nil {
		t.Fatalf("Forget: %v %v", ok, err)
	}
	w.start(t, o)
	if res := deliver(t, w.tr, "u@example.test"); res[0].Status != spool.Sent {
		t.Fatalf("after -tls-forget: %s %s", res[0].Status, res[0].Reply)
	}
	// With remember = "off" nothing is remembered.
	w2 := newDANEWorld(t, false, "mx.example.test")
	w2.start(t, tlspolicy.Options{RootCAs: w2.ca.Pool, Remember: "off"})
	deliver(t, w2.tr, "u@example.test")
	if d := w2.pol.Decide(context.Background(), "example.test", "mx.example.test", tlspolicy.Opportunistic); d.Mode != tlspolicy.Opportunistic {
		t.Fatalf("remember=off still raised the level: %s", d)
	}
}

// TLSRPT: what the policies saw is counted per domain and day, and the
// next day's pass queues one report per domain to the rua of _smtp._tls,
// gzipped JSON in multipart/report; report-type=tlsrpt, with RFC 8460's
// fields.
func TestTLSRPTReport(t *testing.T) {
	w := newDANEWorld(t, false, "wrong.test")
	w.dns.Add(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"`,
		`_smtp._tls.example.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.test,https://r.example.test/"`)
	ps := w.policyServer(t, "version: STSv1\nmode: testing\nmx: mx.example.test\nmax_age: 86400\n")
	now := time.Now().UTC() // the test CA's certificates are valid now only
	day := now.Truncate(24 * time.Hour)
	o := w.stsOptions(ps)
	o.Now = func() time.Time { return now }
	w.start(t, o)
	for i := 0; i < 2; i++ {
		if res := deliver(t, w.tr, "u@example.test"); res[0].Status != spool.Sent {
			t.Fatalf("testing mode must deliver: %s %s", res[0].Status, res[0].Reply)
		}
		w.tr.CloseIdle() // two sessions, not one reused
	}
	dir := t.TempDir()
	sp, err := spool.Create(filepath.Join(dir, "spool"), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := w.pol.SendReports(context.Background(), sp, "relay.test"); n != 0 {
		t.Fatalf("%d reports sent on the day itself", n)
	}
	now = day.Add(24*time.Hour + time.Minute)
	n, err := w.pol.SendReports(context.Background(), sp, "relay.test")
	if n != 1 || err != nil {
		t.Fatalf("SendReports: %d, %v", n, err)
	}
	ents, _ := sp.Scan(nil)
	if len(ents) != 1 {
		t.Fatalf("%d queued, want 1", len(ents))
	}
	env, content := testenv.ReadMessage(t, sp.Dir, ents[0].ID)
	if env.From != "" || len(env.Rcpts) != 1 || env.Rcpts[0] != "tlsrpt@example.test" {
		t.Fatalf("envelope %+v", env)
	}
	msg, err := mail.ReadMessage(strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("TLS-Report-Domain") != "example.test" || msg.Header.Get("TLS-Report-Submitter") != "relay.test" ||
		!strings.HasPrefix(msg.Header.Get("Subject"), "Report Domain: example.test Submitter: relay.test Report-ID: <") {
		t.Errorf("headers %v", msg.Header)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/report" || params["report-type"] != "tlsrpt" {
		t.Fatalf("Content-Type %q", msg.Header.Get("Content-Type"))
	}
	var js []byte
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "application/tlsrpt+gzip") {
			raw, _ := io.ReadAll(p)
			dec, _ := decodeB64(string(raw))
			zr, err := gzip.NewReader(bytes.NewReader(dec))
			if err != nil {
				t.Fatal(err)
			}
			js, _ = io.ReadAll(zr)
		}
	}
	var rep map[string]any
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatalf("report JSON: %v: %s", err, js)
	}
	get := func(m any, path ...string) any {
		for _, k := range path {
			mm, ok := m.(map[string]any)
			if !ok {
				return nil
			}
			m = mm[k]
		}
		return m
	}
	for _, k := range []string{"organization-name", "contact-info", "report-id"} {
		if s, _ := rep[k].(string); s == "" {
			t.Errorf("no %s in %s", k, js)
		}
	}
	if get(rep, "date-range", "start-datetime") != day.Format(time.RFC3339) || get(rep, "date-range", "end-datetime") != day.Add(24*time.Hour-time.Second).Format(time.RFC3339) {
		t.Errorf("date-range %v", rep["date-range"])
	}
	pols, _ := rep["policies"].([]any)
	if len(pols) != 1 {
		t.Fatalf("policies %s", js)
	}
	p := pols[0]
	if get(p, "policy", "policy-type") != "sts" || get(p, "policy", "policy-domain") != "example.test" ||
		!strings.Contains(toJSON(get(p, "policy", "policy-string")), "mode: testing") ||
		toJSON(get(p, "policy", "mx-host")) != `["mx.example.test"]` {
		t.Errorf("policy %s", toJSON(get(p, "policy")))
	}
	// Two sessions, both with a certificate for the wrong name: failures
	// that testing mode delivered through.
	if get(p, "summary", "total-successful-session-count") != 0.0 || get(p, "summary", "total-failure-session-count") != 2.0 {
		t.Errorf("summary %s", toJSON(get(p, "summary")))
	}
	fd, _ := get(p, "failure-details").([]any)
	if len(fd) != 1 || get(fd[0], "result-type") != "certificate-host-mismatch" ||
		get(fd[0], "receiving-mx-hostname") != "mx.example.test" || get(fd[0], "failed-session-count") != 2.0 {
		t.Errorf("failure-details %s", toJSON(fd))
	}
	// Queued once: the counts are gone.
	if n, _ := w.pol.SendReports(context.Background(), sp, "relay.test"); n != 0 {
		t.Errorf("sent again: %d", n)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}

// A DANE-EE match with a certificate no CA vouches for is not remembered
// as verified: were the TLSA records withdrawn, the domain's mail would
// otherwise be deferred until an admin noticed.
func TestDANEMatchNotRememberedAsVerified(t *testing.T) {
	w := newDANEWorld(t, false, "mx.example.test")
	w.dns.Add(t, tlsa(3, 1, 1, w.port, w.leaf.RawSubjectPublicKeyInfo))
	w.dns.Sign("example.test")
	w.start(t, tlspolicy.Options{DANE: true}) // trusts no CA
	if res := deliver(t, w.tr, "u@example.test"); res[0].Status != spool.Sent {
		t.Fatalf("%s %s", res[0].Status, res[0].Reply)
	}
	w.start(t, tlspolicy.Options{}) // DANE gone
	if d := w.pol.Decide(context.Background(), "example.test", "mx.example.test", tlspolicy.Opportunistic); d.Mode != tlspolicy.Opportunistic {
		t.Fatalf("after a DANE-only delivery: %s %v", d, d.Notes)
	}
}
