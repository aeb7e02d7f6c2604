package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/spool"
)

// fakeDNS answers from tables; a name in errs fails with that error.
type fakeDNS struct {
	mx    map[string][]*net.MX
	hosts map[string][]string
	errs  map[string]error
}

func (f *fakeDNS) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if err := f.errs["mx:"+name]; err != nil {
		return nil, err
	}
	if mx, ok := f.mx[name]; ok {
		return mx, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (f *fakeDNS) LookupHost(_ context.Context, name string) ([]string, error) {
	if err := f.errs["a:"+name]; err != nil {
		return nil, err
	}
	if a, ok := f.hosts[name]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

var (
	nxdomain = &net.DNSError{Err: "no such host", IsNotFound: true}
	servfail = &net.DNSError{Err: "server misbehaving", IsTemporary: true}
	timeout  = &net.DNSError{Err: "i/o timeout", IsTimeout: true}
)

func env1(rcpts ...string) *spool.Envelope {
	return &spool.Envelope{ID: "0000000000000000001", From: "s@example.org", Rcpts: rcpts, Size: 20}
}

func deliver(t *testing.T, tr *Transport, rcpts ...string) []Result {
	t.Helper()
	e := env1(rcpts...)
	idx := make([]int, len(rcpts))
	for i := range idx {
		idx[i] = i
	}
	return tr.Deliver(context.Background(), tr.Route(rcpts[0]), e, idx, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))
}

// freePortOn finds a port free on both 127.0.0.2 and 127.0.0.3, so two MX
// hosts can share the one MX port.
func freePortOn(t *testing.T) string {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l2, err := net.Listen("tcp", "127.0.0.3:"+port)
		l.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("no common free port")
	return ""
}

func TestMXOrderAndFallback(t *testing.T) {
	port := freePortOn(t)
	// mx1 (preference 10) is down; mx2 (20) takes the mail.
	sink := testenv.NewSinkWith(t, testenv.SinkOptions{Addr: "127.0.0.3:" + port})
	dns := &fakeDNS{
		mx: map[string][]*net.MX{"example.net": {
			{Host: "mx1.example.net.", Pref: 10}, {Host: "mx2.example.net.", Pref: 20},
		}},
		hosts: map[string][]string{"mx1.example.net": {"127.0.0.2"}, "mx2.example.net": {"127.0.0.3"}},
	}
	tr := New(Options{Hostname: "me.example", Resolver: dns, Port: port, MXTLS: "none", ConnectTimeout: 2 * time.Second})
	res := deliver(t, tr, "a@example.net", "b@example.net")
	for _, r := range res {
		if r.Status != spool.Sent {
			t.Fatalf("result %+v", r)
		}
	}
	if m := sink.Messages(); len(m) != 1 || len(m[0].Rcpts) != 2 {
		t.Fatalf("want one transaction with both recipients, got %+v", m)
	}
	if !strings.Contains(tr.Explain(context.Background(), "x@example.net"), "1. mx1.example.net [127.0.0.2:"+port+"]\n  2. mx2.example.net") {
		t.Errorf("Explain does not list MX hosts in preference order:\n%s", tr.Explain(context.Background(), "x@example.net"))
	}
}

func TestImplicitMXAndDNSErrors(t *testing.T) {
	sink := testenv.NewSink(t)
	host, port, _ := net.SplitHostPort(sink.Addr)
	dns := &fakeDNS{
		mx:    map[string][]*net.MX{"nullmx.example": {{Host: ".", Pref: 0}}, "badmx.example": {{Host: "gone.example.", Pref: 10}}},
		hosts: map[string][]string{"implicit.example": {host}},
		errs: map[string]error{
			"mx:servfail.example": servfail, "mx:slow.example": timeout,
			"a:gone.example": nxdomain,
		},
	}
	tr := New(Options{Hostname: "me.example", Resolver: dns, Port: port, MXTLS: "none"})
	cases := []struct {
		rcpt string
		want spool.Status
		text string
	}{
		{"a@implicit.example", spool.Sent, "250"},
		{"a@nxdomain.example", spool.Failed, "NXDOMAIN"},
		{"a@nullmx.example", spool.Failed, "null MX"},
		{"a@servfail.example", spool.Deferred, "misbehaving"},
		{"a@slow.example", spool.Deferred, "timeout"},
		{"a@badmx.example", spool.Deferred, "no MX host"},
	}
	for _, c := range cases {
		r := deliver(t, tr, c.rcpt)[0]
		if r.Status != c.want || !strings.Contains(r.Reply, c.text) {
			t.Errorf("%s: %v %q, want %v containing %q", c.rcpt, r.Status, r.Reply, c.want, c.text)
		}
	}
	// For a smarthost every DNS failure is temporary.
	tr = New(Options{Hostname: "me.example", Resolver: dns, Smarthosts: []string{"nxdomain.example:25"}, SmarthostTLS: "none"})
	if r := deliver(t, tr, "a@anywhere.example")[0]; r.Status != spool.Deferred {
		t.Errorf("smarthost NXDOMAIN: %v %q, want deferred", r.Status, r.Reply)
	}
}

func TestSmarthostFailoverAndRoutes(t *testing.T) {
	up := testenv.NewSink(t)
	other := testenv.NewSink(t)
	down := testenv.FreePort(t)
	tr := New(Options{
		Hostname:     "me.example",
		Smarthosts:   []string{"[" + strings.Replace(down, ":", "]:", 1), "[" + strings.Replace(up.Addr, ":", "]:", 1)},
		Routes:       map[string]string{"routed.example": "[" + strings.Replace(other.Addr, ":", "]:", 1), ".sub.example": other.Addr},
		SmarthostTLS: "none", ConnectTimeout: 2 * time.Second,
	})
	if r := deliver(t, tr, "a@remote.example")[0]; r.Status != spool.Sent {
		t.Fatalf("failover: %+v", r)
	}
	if len(up.Messages()) != 1 {
		t.Error("second smarthost did not get the message")
	}
	for _, rcpt := range []string{"b@routed.example", "c@a.sub.example"} {
		if r := deliver(t, tr, rcpt)[0]; r.Status != spool.Sent {
			t.Fatalf("%s: %+v", rcpt, r)
		}
	}
	if len(other.Messages()) != 2 {
		t.Errorf("routes: the routed sink got %d messages, want 2", len(other.Messages()))
	}
}

func TestTLSPolicies(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir)
	cert, _, _ := ca.Leaf(t, "127.0.0.1", "relay.test")
	tlsSink := testenv.NewSinkWith(t, testenv.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Auth: map[string]string{"alice": "s3cret"}})
	plainSink := testenv.NewSink(t)
	implicitSink := testenv.NewSinkWith(t, testenv.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Implicit: true})
	hop := func(s *testenv.Sink) string { return "[" + strings.Replace(s.Addr, ":", "]:", 1) }
	otherCA := testenv.NewCA(t, t.TempDir())

	cases := []struct {
		name   string
		o      Options
		sink   *testenv.Sink
		want   spool.Status
		tls    bool
		auth   string
		inText string
	}{
		{"opportunistic, no verify", Options{SmarthostTLS: "opportunistic"}, tlsSink, spool.Sent, true, "", ""},
		{"opportunistic falls back to plain", Options{SmarthostTLS: "opportunistic"}, plainSink, spool.Sent, false, "", ""},
		{"required, verified with the test CA", Options{SmarthostTLS: "required", TLSVerify: true, RootCAs: ca.Pool}, tlsSink, spool.Sent, true, "", ""},
		{"required, wrong CA", Options{SmarthostTLS: "required", TLSVerify: true, RootCAs: otherCA.Pool}, tlsSink, spool.Deferred, false, "", "certificate"},
		{"required, verification off", Options{SmarthostTLS: "required", TLSVerify: false}, tlsSink, spool.Sent, true, "", ""},
		{"required, no STARTTLS: never in clear", Options{SmarthostTLS: "required"}, plainSink, spool.Deferred, false, "", "TLS is required"},
		{"implicit TLS (465)", Options{SmarthostTLS: "implicit", TLSVerify: true, RootCAs: ca.Pool}, implicitSink, spool.Sent, true, "", ""},
		{"AUTH over TLS", Options{SmarthostTLS: "required", TLSVerify: true, RootCAs: ca.Pool, AuthUser: "alice", AuthPass: "s3cret"}, tlsSink, spool.Sent, true, "alice", ""},
		{"AUTH, wrong password", Options{SmarthostTLS: "required", RootCAs: ca.Pool, AuthUser: "alice", AuthPass: "nope"}, tlsSink, spool.Deferred, false, "", "AUTH failed"},
		{"AUTH never in clear", Options{SmarthostTLS: "none", AuthUser: "alice", AuthPass: "s3cret"}, plainSink, spool.Deferred, false, "", "in clear"},
	}
	for _, c := range cases {
		c.o.Hostname, c.o.Smarthosts, c.o.ConnectTimeout = "me.example", []string{hop(c.sink)}, 2*time.Second
		before := len(c.sink.Messages())
		r := deliver(t, New(c.o), "x@remote.example")[0]
		if r.Status != c.want || !strings.Contains(r.Reply, c.inText) {
			t.Errorf("%s: %v %q", c.name, r.Status, r.Reply)
			continue
		}
		msgs := c.sink.Messages()
		if c.want != spool.Sent {
			if len(msgs) != before {
				t.Errorf("%s: a message was sent although the policy forbids it", c.name)
			}
			continue
		}
		m := msgs[len(msgs)-1]
		if m.TLS != c.tls || m.AuthUser != c.auth {
			t.Errorf("%s: TLS %v auth %q, want %v %q", c.name, m.TLS, m.AuthUser, c.tls, c.auth)
		}
	}
}

func TestPerRecipientReplies(t *testing.T) {
	sink := testenv.NewSink(t)
	sink.SetReplies(func(r string) error {
		switch {
		case strings.HasPrefix(r, "perm"):
			return testenv.Reply(550, 5, 1, 1, "unknown")
		case strings.HasPrefix(r, "temp"):
			return testenv.Reply(450, 4, 2, 1, "busy")
		}
		return nil
	}, nil)
	tr := New(Options{Hostname: "me", Smarthosts: []string{sink.Addr}, SmarthostTLS: "none",
		Resolver: &fakeDNS{hosts: map[string][]string{"127.0.0.1": {"127.0.0.1"}}}})
	res := deliver(t, tr, "ok@x.example", "perm@x.example", "temp@x.example")
	got := map[string]spool.Status{}
	for _, r := range res {
		got[[]string{"ok", "perm", "temp"}[r.Rcpt]] = r.Status
	}
	if got["ok"] != spool.Sent || got["perm"] != spool.Failed || got["temp"] != spool.Deferred {
		t.Errorf("outcomes %v", got)
	}
}

func TestOwnNamesDoNotLoop(t *testing.T) {
	tr := New(Options{Hostname: "mx.example", SelfDomains: []string{"mx.example", "localhost"}, Resolver: &fakeDNS{}})
	r := deliver(t, tr, "postmaster@MX.example")[0]
	if r.Status != spool.Deferred || !strings.Contains(r.Reply, "loop back") {
		t.Errorf("mail for our own name: %v %q", r.Status, r.Reply)
	}
	if strings.Contains(tr.Route("a@other.example").Key, "loop") {
		t.Error("another domain taken for ours")
	}
}

// TestSMTPUTF8OnlyWhenAnAddressNeedsIt: Go's net/smtp says SMTPUTF8 to
// every server that offers it; such a message with ASCII addresses must
// still reach a next hop without SMTPUTF8, while one with a UTF-8 address
// cannot (5.6.7).
func TestSMTPUTF8OnlyWhenAnAddressNeedsIt(t *testing.T) {
	old := testenv.NewSinkWith(t, testenv.SinkOptions{NoSMTPUTF8: true})
	tr := New(Options{Hostname: "me", Smarthosts: []string{old.Addr}, SmarthostTLS: "none"})
	e := env1("ascii@x.example", "jürgen@x.example")
	e.UTF8 = true
	res := tr.Deliver(context.Background(), tr.Route("a@x.example"), e, []int{0}, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))
	if res[0].Status != spool.Sent {
		t.Errorf("ASCII envelope marked SMTPUTF8: %+v", res[0])
	}
	res = tr.Deliver(context.Background(), tr.Route("a@x.example"), e, []int{1}, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))
	if res[0].Status != spool.Failed || !strings.Contains(res[0].Reply, "5.6.7") {
		t.Errorf("UTF-8 recipient to a hop without SMTPUTF8: %+v", res[0])
	}
}

// TestRequireTLS: a REQUIRETLS message goes only over verified TLS to a hop
// that offers REQUIRETLS; otherwise it waits (no TLS) or fails (5.7.30).
func TestRequireTLS(t *testing.T) {
	ca := testenv.NewCA(t, t.TempDir())
	cert, _, _ := ca.Leaf(t, "127.0.0.1")
	tlsSink := testenv.NewSinkWith(t, testenv.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	plain := testenv.NewSink(t)
	e := env1("r@x.example")
	e.RequireTLS = true
	send := func(s *testenv.Sink, pool *x509.CertPool) Result {
		tr := New(Options{Hostname: "me", Smarthosts: []string{s.Addr}, SmarthostTLS: "opportunistic", RootCAs: pool})
		return tr.Deliver(context.Background(), tr.Route("r@x.example"), e, []int{0}, strings.NewReader("Subject: t\r\n\r\nhi\r\n"))[0]
	}
	if r := send(plain, ca.Pool); r.Status != spool.Deferred || len(plain.Messages()) != 0 {
		t.Errorf("REQUIRETLS to a hop without TLS: %+v (must not go in clear)", r)
	}
	if r := send(tlsSink, nil); r.Status != spool.Deferred || len(tlsSink.Messages()) != 0 {
		t.Errorf("REQUIRETLS with an unverifiable certificate: %+v", r)
	}
	// The test sink offers no REQUIRETLS: verified TLS, then 5.7.30.
	if r := send(tlsSink, ca.Pool); r.Status != spool.Failed || !strings.Contains(r.Reply, "5.7.30") {
		t.Errorf("REQUIRETLS to a hop without it: %+v", r)
	}
	good := testenv.NewSinkWith(t, testenv.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, RequireTLS: true})
	if r := send(good, ca.Pool); r.Status != spool.Sent || len(good.Messages()) != 1 || !good.Messages()[0].TLS {
		t.Errorf("REQUIRETLS to a verified hop that offers it: %+v", r)
	}
}

// Each smarthost and route may have its own TLS mode, CA and credentials
// ([delivery.hosts."hop"]); what it does not set comes from [delivery]. An
// authenticated smarthost then lives beside an internal route that has no
// STARTTLS and no AUTH.
func TestPerHopPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir)
	cert, _, _ := ca.Leaf(t, "127.0.0.1")
	smart := testenv.NewSinkWith(t, testenv.SinkOptions{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}, Auth: map[string]string{"alice": "s3cret"}})
	internal := testenv.NewSink(t) // no STARTTLS, no AUTH
	hop := func(s *testenv.Sink) string { return "[" + strings.Replace(s.Addr, ":", "]:", 1) }
	auth := dir + "/relay.auth"
	if err := os.WriteFile(auth, []byte("alice:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`hostname = "me.example"
[delivery]
smarthost = %q
smarthost_tls = "required"
[delivery.routes]
"internal.example" = %q
[delivery.hosts.%q]
tls_verify = true
tls_ca_file = %q
auth_file = %q
[delivery.hosts.%q]
tls = "none"
auth_file = ""
`, hop(smart), hop(internal), hop(smart), ca.PEMFile, auth, hop(internal))
	cfg, err := config.Parse("test", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rcpt string
		sink *testenv.Sink
		tls  bool
		auth string
	}{{"x@remote.example", smart, true, "alice"}, {"y@internal.example", internal, false, ""}} {
		if r := deliver(t, tr, c.rcpt)[0]; r.Status != spool.Sent {
			t.Fatalf("%s: %v %q", c.rcpt, r.Status, r.Reply)
		}
		m := c.sink.Messages()
		if len(m) != 1 || m[0].TLS != c.tls || m[0].AuthUser != c.auth {
			t.Errorf("%s: %+v, want TLS %v AUTH %q", c.rcpt, m, c.tls, c.auth)
		}
	}
	tr.CloseIdle()
	// A hop that is neither a smarthost nor a route is a config error.
	if _, err := config.Parse("test", []byte(src+"[delivery.hosts.\"[nowhere]:25\"]\ntls = \"none\"\n")); err == nil || !strings.Contains(err.Error(), "neither a smarthost nor a route") {
		t.Errorf("unknown hop: %v", err)
	}
}
