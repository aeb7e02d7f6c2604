// Package tlspolicy_test drives the real qrun against a DNS server and
// next hops on 127.0.0.1: DANE as qrun -route shows it and as a pass
// applies it, and qrun -tls-forget.
package tlspolicy_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// world: example.test's MX mx.example.test is sink, named by a signed
// zone with a DANE-EE record for the certificate of a STARTTLS sink.
func world(t *testing.T, sink *testenv.Sink, spki []byte) *testenv.Env {
	_, port, _ := net.SplitHostPort(sink.Addr)
	dns := dnstest.Start(t)
	h := sha256.Sum256(spki)
	dns.Add(t, "example.test. 300 IN MX 10 mx.example.test.", "mx.example.test. 300 IN A 127.0.0.1",
		"_"+port+"._tcp.mx.example.test. 300 IN TLSA 3 1 1 "+hex.EncodeToString(h[:]))
	dns.Sign("example.test")
	e := testenv.New(t)
	e.Extra["delivery"] = "resolver = \"" + dns.Addr + "\"\nmx_port = " + port + "\nretry_first = \"1s\""
	e.Extra["tls_policy"] = "mta_sts = false"
	e.WriteConfig()
	return e
}

func tlsSink(t *testing.T) (*testenv.Sink, []byte) {
	ca := testenv.NewCA(t, t.TempDir())
	pair, _, _ := ca.Leaf(t, "mx.example.test")
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	return testenv.NewSinkWith(t, testenv.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{pair}}}), leaf.RawSubjectPublicKeyInfo
}

func queue(t *testing.T, e *testenv.Env) string {
	sp, err := spool.Open(e.SpoolDir, spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{ID: "0000000000001000001", Received: time.Now(), From: "s@test.example",
		Rcpts: []string{"u@example.test"}, Peer: "local", Helo: "local", Protocol: "local", Body: "7BIT"}
	if err := sp.Enqueue(env, []byte("Subject: dane\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}
	if testenv.IsRoot() {
		testenv.Chown(t, e.SpoolDir, "mail")
	}
	return env.ID
}

func TestRouteShowsTLSA(t *testing.T) {
	sink, spki := tlsSink(t)
	e := world(t, sink, spki)
	out, code := e.Qrun("-route", "u@example.test")
	if code != 0 || !strings.Contains(out, "TLS dane (dane)") || !strings.Contains(out, "1 usable TLSA record(s) (3 1 1)") {
		t.Fatalf("qrun -route (exit %d):\n%s", code, out)
	}
	queue(t, e)
	if out, _ := e.Qrun("-once"); len(sink.Messages()) != 1 || !sink.Messages()[0].TLS {
		t.Fatalf("not delivered over DANE-verified TLS: %d messages\n%s\n%s", len(sink.Messages()), out, e.Log())
	}
}

// A next hop that strips STARTTLS (an attacker on the path answers in
// place of the MX host) gets nothing: the message stays queued.
func TestStrippedSTARTTLSDeferred(t *testing.T) {
	_, spki := tlsSink(t)
	stripper := testenv.NewSink(t) // no STARTTLS
	e := world(t, stripper, spki)
	id := queue(t, e)
	e.Qrun("-once")
	if n := len(stripper.Messages()); n != 0 {
		t.Fatalf("%d messages sent in clear to a STARTTLS-stripping hop", n)
	}
	if q := e.Queued(); len(q) != 1 || q[0] != id {
		t.Fatalf("queue %v, want %s still there", q, id)
	}
	if log := e.Log(); !strings.Contains(log, "STARTTLS") {
		t.Errorf("the log does not say why:\n%s", log)
	}
}

func TestTLSForget(t *testing.T) {
	sink, spki := tlsSink(t)
	e := world(t, sink, spki)
	dir := filepath.Join(e.SpoolDir, "tlspolicy")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "remembered.json"), []byte(`{"example.test":{"level":"verified","since":"2026-01-01T00:00:00Z"},"other.test":{"level":"tls","since":"2026-01-01T00:00:00Z"}}`), 0o600)
	if testenv.IsRoot() {
		testenv.Chown(t, e.SpoolDir, "mail")
	}
	if out, code := e.Qrun("-tls-forget", "Example.TEST"); code != 0 || !strings.Contains(out, "forgot") {
		t.Fatalf("exit %d: %s", code, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "remembered.json"))
	if strings.Contains(string(b), "example.test") || !strings.Contains(string(b), "other.test") {
		t.Fatalf("after -tls-forget: %s", b)
	}
	if out, _ := e.Qrun("-tls-forget", "example.test"); !strings.Contains(out, "no TLS level was remembered") {
		t.Fatalf("second -tls-forget: %s", out)
	}
}

// qrun sends the TLSRPT report of a day that has ended through itself:
// queued by a pass, delivered to the rua like any message.
func TestTLSRPTSentByQrun(t *testing.T) {
	sink, _ := tlsSink(t)
	_, port, _ := net.SplitHostPort(sink.Addr)
	dns := dnstest.Start(t)
	dns.Add(t, "example.test. 300 IN MX 10 mx.example.test.", "mx.example.test. 300 IN A 127.0.0.1",
		`_smtp._tls.example.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.test"`)
	e := testenv.New(t)
	e.Extra["delivery"] = "resolver = \"" + dns.Addr + "\"\nmx_port = " + port
	e.Extra["tls_policy"] = "tlsrpt = true\nmta_sts = false"
	e.WriteConfig()
	day := time.Now().UTC().Add(-24 * time.Hour).Format("2006-01-02")
	dir := filepath.Join(e.SpoolDir, "tlspolicy", "tlsrpt", day)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "example.test.json"), []byte(`[{"policy":{"policy-type":"tlsa","policy-string":["3 1 1 00"],"policy-domain":"example.test"},"summary":{"total-successful-session-count":5,"total-failure-session-count":0}}]`), 0o600)
	if testenv.IsRoot() {
		testenv.Chown(t, e.SpoolDir, "mail")
	}
	out, _ := e.Qrun("-once")
	msgs := sink.Messages()
	if len(msgs) != 1 || len(msgs[0].Rcpts) != 1 || msgs[0].Rcpts[0] != "tlsrpt@example.test" || msgs[0].From != "" {
		t.Fatalf("sink got %+v\n%s\n%s", msgs, out, e.Log())
	}
	if data := string(msgs[0].Data); !strings.Contains(data, `report-type="tlsrpt"`) || !strings.Contains(data, "application/tlsrpt+gzip") {
		t.Fatalf("not a TLSRPT report:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "example.test.json")); !os.IsNotExist(err) {
		t.Errorf("the day's counts are still there after the report was queued: %v", err)
	}
}
