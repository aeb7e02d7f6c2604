package delivery

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/tlspolicy"
)

// daneWorld is one recipient domain, example.test, whose MX host
// mx.example.test is a sink on 127.0.0.1, named by a DNS server on
// 127.0.0.1 that signs what the test says.
type daneWorld struct {
	dns  *dnstest.Server
	ca   *testenv.CA
	sink *testenv.Sink
	port string
	tr   *Transport
	pol  *tlspolicy.Engine
	dir  string
	leaf *x509.Certificate
}

// newDANEWorld starts the sink: with STARTTLS (a leaf for mx.example.test
// from a test CA, the CA certificate sent in the chain) unless noTLS.
func newDANEWorld(t *testing.T, noTLS bool, leafName string) *daneWorld {
	w := &daneWorld{dns: dnstest.Start(t), ca: testenv.NewCA(t, t.TempDir()), dir: t.TempDir()}
	pair, _, _ := w.ca.Leaf(t, leafName)
	pair.Certificate = append(pair.Certificate, w.ca.Cert.Raw)
	w.leaf, _ = x509.ParseCertificate(pair.Certificate[0])
	var o testenv.SinkOptions
	if !noTLS {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	w.sink = testenv.NewSinkWith(t, o)
	_, w.port, _ = net.SplitHostPort(w.sink.Addr)
	w.dns.Add(t, "example.test. 300 IN MX 10 mx.example.test.", "mx.example.test. 300 IN A 127.0.0.1")
	return w
}

// start makes the Transport; call it after the records are in.
func (w *daneWorld) start(t *testing.T, o tlspolicy.Options) {
	o.Resolver, o.Dir, o.Port = w.dns.Addr, w.dir, w.port
	if o.RootCAs == nil {
		o.RootCAs = x509.NewCertPool() // trust nothing: only DANE can verify
	}
	pol, err := tlspolicy.New(o)
	if err != nil {
		t.Fatal(err)
	}
	w.pol = pol
	addr := w.dns.Addr
	w.tr = New(Options{
		Hostname: "client.test", Port: w.port, TLSPolicyEngine: pol,
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}},
		CommandTimeout: 10 * time.Second,
	})
	t.Cleanup(w.tr.CloseIdle)
}

func tlsa(usage, selector, mtype int, port string, data []byte) string {
	h := sha256.Sum256(data)
	return "_" + port + "._tcp.mx.example.test. 300 IN TLSA " +
		itoa(usage) + " " + itoa(selector) + " " + itoa(mtype) + " " + hex.EncodeToString(h[:])
}

func itoa(i int) string { return string(rune('0' + i)) }

func otherCA(t *testing.T) *x509.Certificate { return testenv.NewCA(t, t.TempDir()).Cert }

func TestDANE(t *testing.T) {
	cases := []struct {
		name   string
		noTLS  bool
		leaf   string
		sign   bool
		record func(w *daneWorld) string
		want   spool.Status
		why    string // in the reply of a deferral
	}{
		{name: "DANE-EE match", sign: true, leaf: "not-the-mx.invalid",
			record: func(w *daneWorld) string { return tlsa(3, 1, 1, w.port, w.leaf.RawSubjectPublicKeyInfo) }, want: spool.Sent},
		{name: "DANE-EE mismatch", sign: true,
			record: func(w *daneWorld) string { return tlsa(3, 1, 1, w.port, []byte("another key")) }, want: spool.Deferred, why: "TLSA"},
		{name: "DANE-TA match", sign: true,
			record: func(w *daneWorld) string { return tlsa(2, 0, 1, w.port, w.ca.Cert.Raw) }, want: spool.Sent},
		{name: "DANE-TA mismatch", sign: true,
			record: func(w *daneWorld) string { return tlsa(2, 0, 1, w.port, otherCA(t).Raw) }, want: spool.Deferred, why: "TLSA"},
		{name: "DANE-TA wrong name", sign: true, leaf: "other.test",
			record: func(w *daneWorld) string { return tlsa(2, 0, 1, w.port, w.ca.Cert.Raw) }, want: spool.Deferred, why: "TLSA"},
		{name: "unsigned zone: TLSA ignored, opportunistic as before",
			record: func(w *daneWorld) string { return tlsa(3, 1, 1, w.port, []byte("another key")) }, want: spool.Sent},
		{name: "STARTTLS stripped", sign: true, noTLS: true,
			record: func(w *daneWorld) string { return tlsa(3, 1, 1, w.port, []byte("any")) }, want: spool.Deferred, why: "STARTTLS"},
		{name: "only unusable records: TLS still required", sign: true, noTLS: true,
			record: func(w *daneWorld) string { return tlsa(1, 1, 1, w.port, []byte("PKIX-EE")) }, want: spool.Deferred, why: "STARTTLS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			leaf := c.leaf
			if leaf == "" {
				leaf = "mx.example.test"
			}
			w := newDANEWorld(t, c.noTLS, leaf)
			w.dns.Add(t, c.record(w))
			if c.sign {
				w.dns.Sign("example.test")
			}
			w.start(t, tlspolicy.Options{DANE: true})
			res := deliver(t, w.tr, "u@example.test")
			if res[0].Status != c.want {
				t.Fatalf("status %s, want %s: %s", res[0].Status, c.want, res[0].Reply)
			}
			msgs := w.sink.Messages()
			if c.want == spool.Sent {
				if len(msgs) != 1 || !msgs[0].TLS && !c.noTLS {
					t.Fatalf("sink got %+v, want one message over TLS", msgs)
				}
				return
			}
			if len(msgs) != 0 {
				t.Fatalf("deferred, yet the sink got %d messages", len(msgs))
			}
			if !strings.Contains(res[0].Reply, c.why) {
				t.Errorf("reply %q does not say %q", res[0].Reply, c.why)
			}
		})
	}
}

// A signed zone whose TLSA lookup fails is a temporary failure: nothing
// is sent, not even in clear, and the host is not even connected to.
func TestDANELookupFailureDefers(t *testing.T) {
	w := newDANEWorld(t, false, "mx.example.test")
	w.dns.Sign("example.test")
	w.dns.ServFail("_"+w.port+"._tcp.mx.example.test", "TLSA")
	w.start(t, tlspolicy.Options{DANE: true})
	res := deliver(t, w.tr, "u@example.test")
	if res[0].Status != spool.Deferred || !strings.Contains(res[0].Reply, "temporary") {
		t.Fatalf("got %s %q, want a temporary deferral", res[0].Status, res[0].Reply)
	}
	if w.sink.Sessions != 0 {
		t.Fatalf("the MX host was connected to %d times", w.sink.Sessions)
	}
}

// qrun -route shows the TLSA outcome for each MX host.
func TestExplainShowsDANE(t *testing.T) {
	w := newDANEWorld(t, false, "mx.example.test")
	w.dns.Add(t, tlsa(3, 1, 1, w.port, w.leaf.RawSubjectPublicKeyInfo))
	w.dns.Sign("example.test")
	w.start(t, tlspolicy.Options{DANE: true})
	out := w.tr.Explain(context.Background(), "u@example.test")
	for _, want := range []string{"TLS dane (dane)", "1 usable TLSA record(s) (3 1 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("Explain does not say %q:\n%s", want, out)
		}
	}
}
