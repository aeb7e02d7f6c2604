package delivery

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/tlspolicy"
)

// policyServer is https://mta-sts.example.test on 127.0.0.1, with a
// certificate from the world's test CA.
type policyServer struct {
	mu     sync.Mutex
	body   string
	status int
	hits   int
	srv    *httptest.Server
}

func (w *daneWorld) policyServer(t *testing.T, body string) *policyServer {
	ps := &policyServer{body: body, status: 200}
	pair, _, _ := w.ca.Leaf(t, "mta-sts.example.test")
	ps.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.hits++
		if r.URL.Path != "/.well-known/mta-sts.txt" || r.Host != "mta-sts.example.test" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/plain")
		rw.WriteHeader(ps.status)
		rw.Write([]byte(ps.body))
	}))
	ps.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ps.srv.StartTLS()
	t.Cleanup(ps.srv.Close)
	return ps
}

func (ps *policyServer) set(status int, body string) {
	ps.mu.Lock()
	ps.status, ps.body = status, body
	ps.mu.Unlock()
}

// stsOptions reach the policy server whatever name is dialled, and trust
// the test CA (for the policy host and for MX certificates).
func (w *daneWorld) stsOptions(ps *policyServer) tlspolicy.Options {
	addr := ps.srv.Listener.Addr().String()
	return tlspolicy.Options{MTASTS: true, DANE: true, TLSRPT: true, RootCAs: w.ca.Pool,
		HTTPDial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
}

const policyEnforce = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"

func TestMTASTS(t *testing.T) {
	cases := []struct {
		name   string
		leaf   string // the MX host's certificate name
		policy string
		want   spool.Status
		why    string
	}{
		{"enforce, verified", "mx.example.test", policyEnforce, spool.Sent, ""},
		{"enforce, certificate for another name", "wrong.test", policyEnforce, spool.Deferred, "certificate"},
		{"enforce, MX host not in the policy", "mx.example.test",
			"version: STSv1\nmode: enforce\nmx: *.other.test\nmax_age: 86400\n", spool.Deferred, "not an MX host"},
		{"testing, certificate for another name: delivered", "wrong.test",
			"version: STSv1\nmode: testing\nmx: mx.example.test\nmax_age: 86400\n", spool.Sent, ""},
		{"none: opportunistic", "wrong.test", "version: STSv1\nmode: none\nmax_age: 86400\n", spool.Sent, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newDANEWorld(t, false, c.leaf)
			w.dns.Add(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"`)
			ps := w.policyServer(t, c.policy)
			w.start(t, w.stsOptions(ps))
			res := deliver(t, w.tr, "u@example.test")
			if res[0].Status != c.want {
				t.Fatalf("status %s, want %s: %s", res[0].Status, c.want, res[0].Reply)
			}
			if c.want == spool.Deferred {
				if n := len(w.sink.Messages()); n != 0 {
					t.Fatalf("deferred, yet the sink got %d messages", n)
				}
				if !strings.Contains(res[0].Reply, c.why) {
					t.Errorf("reply %q does not say %q", res[0].Reply, c.why)
				}
			}
		})
	}
}

// The policy is cached in the spool: a later qrun (a new engine) whose
// TXT lookup and fetch are blocked still enforces it.
func TestMTASTSCacheSurvivesRestart(t *testing.T) {
	w := newDANEWorld(t, false, "wrong.test")
	w.dns.Add(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"`)
	ps := w.policyServer(t, policyEnforce)
	w.start(t, w.stsOptions(ps))
	if res := deliver(t, w.tr, "u@example.test"); res[0].Status != spool.Deferred {
		t.Fatalf("first run: %s %s", res[0].Status, res[0].Reply)
	}
	// An attacker now hides the TXT record and the policy.
	w.dns = nil
	w2 := *w
	w2.dns = newDANEWorld(t, true, "x").dns // a DNS server that knows only the MX and its address
	ps.set(404, "")
	w2.start(t, w.stsOptions(ps))
	res := deliver(t, w2.tr, "u@example.test")
	if res[0].Status != spool.Deferred || len(w.sink.Messages()) != 0 {
		t.Fatalf("after restart without TXT or policy: %s %q, sink %d; want the cached enforce policy to defer", res[0].Status, res[0].Reply, len(w.sink.Messages()))
	}
	if out := w2.tr.Explain(context.Background(), "u@example.test"); !strings.Contains(out, "enforce policy cached") {
		t.Errorf("Explain does not show the cached policy:\n%s", out)
	}
}

// A refresh that fails keeps the cached policy; a policy past half its
// max_age is fetched again even when the id is unchanged.
func TestMTASTSRefresh(t *testing.T) {
	w := newDANEWorld(t, false, "mx.example.test")
	w.dns.Add(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"`)
	ps := w.policyServer(t, policyEnforce)
	now := time.Now()
	o := w.stsOptions(ps)
	o.Now = func() time.Time { return now }
	w.start(t, o)
	deliver(t, w.tr, "u@example.test")
	if ps.hits != 1 {
		t.Fatalf("%d fetches, want 1", ps.hits)
	}
	// The next pass, an hour on: same id, fresh policy: no fetch.
	now = now.Add(time.Hour)
	w.start(t, o)
	deliver(t, w.tr, "u@example.test")
	if ps.hits != 1 {
		t.Fatalf("%d fetches, want 1 (cached policy fresh)", ps.hits)
	}
	// Past half the max_age, the refresh fails: the cached policy stays.
	now = now.Add(13 * time.Hour)
	ps.set(500, "")
	w.start(t, o)
	d := w.pol.Decide(context.Background(), "example.test", "mx.example.test", tlspolicy.Opportunistic)
	if ps.hits != 2 || d.Mode != tlspolicy.RequiredVerified || !strings.Contains(strings.Join(d.Notes, "\n"), "refresh failed") {
		t.Fatalf("hits %d, decision %s %v; want a refetch that failed and the cached enforce kept", ps.hits, d, d.Notes)
	}
	b, err := os.ReadFile(filepath.Join(w.dir, "mta-sts", "example.test.json"))
	if err != nil || !strings.Contains(string(b), `"mode": "enforce"`) {
		t.Fatalf("cache file after a failed refresh: %s %v", b, err)
	}
	// A new policy (id 2, testing) replaces it.
	w.dns.Del("_mta-sts.example.test", "TXT")
	w.dns.Add(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=2"`)
	ps.set(200, "version: STSv1\nmode: testing\nmx: mx.example.test\nmax_age: 600\n")
	w.start(t, o)
	if d := w.pol.Decide(context.Background(), "example.test", "mx.example.test", tlspolicy.Opportunistic); !strings.Contains(strings.Join(d.Notes, "\n"), "testing policy fetched now (id 2") || d.Source == "mta-sts" {
		t.Fatalf("after a new testing policy: %s %v", d, d.Notes)
	}
}

// DANE wins where both apply (RFC 8461 2): a certificate that matches the
// TLSA record but no CA is accepted although MTA-STS says enforce.
func TestDANEBeatsMTASTS(t *testing.T) {
	w := newDANEWorld(t, false, "mx.example.test")
	w.dns.Add(t, `_mta-sts.example.test. 300 IN TXT "v=STSv1; id=1"`, tlsa(3, 1, 1, w.port, w.leaf.RawSubjectPublicKeyInfo))
	w.dns.Sign("example.test")
	ps := w.policyServer(t, "version: STSv1\nmode: enforce\nmx: *.other.test\nmax_age: 86400\n")
	w.start(t, w.stsOptions(ps))
	res := deliver(t, w.tr, "u@example.test")
	if res[0].Status != spool.Sent {
		t.Fatalf("%s %s, want sent under DANE", res[0].Status, res[0].Reply)
	}
}
