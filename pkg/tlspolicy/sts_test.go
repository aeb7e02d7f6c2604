package tlspolicy

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// The policy fetch: HTTPS with a verified certificate, no redirect
// followed, text/plain only, at most 64 KiB.
func TestFetchSTSRefuses(t *testing.T) {
	ca := testenv.NewCA(t, t.TempDir())
	pair, _, _ := ca.Leaf(t, "mta-sts.example.test")
	var handler http.HandlerFunc
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	e, err := New(Options{Dir: t.TempDir(), RootCAs: ca.Pool, HTTPDial: dial})
	if err != nil {
		t.Fatal(err)
	}
	good := "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 600\n"
	for _, c := range []struct {
		name string
		h    http.HandlerFunc
		want string // "" = fetched
	}{
		{"plain", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(good))
		}, ""},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://mta-sts.example.test/other", http.StatusFound)
		}, "redirect refused"},
		{"content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte(good))
		}, "want text/plain"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(good + strings.Repeat("x", 70<<10)))
		}, "larger than"},
		{"404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP 404"},
	} {
		handler = c.h
		p, err := e.fetchSTS(context.Background(), "example.test")
		switch {
		case c.want == "" && (err != nil || p.Mode != "enforce"):
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A certificate no trusted CA signed: refused.
	e2, _ := New(Options{Dir: t.TempDir(), HTTPDial: dial})
	handler = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(good))
	}
	if _, err := e2.fetchSTS(context.Background(), "example.test"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted policy host: %v", err)
	}
}
