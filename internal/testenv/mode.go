package testenv

import (
	"bufio"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Mode is how a client reaches smtp-bs's SMTP dialogue. A suite that
// runs in every mode expects the same replies and the same spool in each:
// go-smtp is the one reader of SMTP, above TLS or without it.
type Mode string

const (
	Plain       Mode = "plain"
	StartTLS    Mode = "starttls"    // EHLO, STARTTLS and a handshake first
	ImplicitTLS Mode = "implicittls" // TLS from the first byte (port 465)
)

// Modes are all of them, in the order suites run them.
var Modes = []Mode{Plain, StartTLS, ImplicitTLS}

// UseMode configures the Env for m: a test CA's certificate in [tls] for
// STARTTLS, and implicit = true as well for implicit TLS. It rewrites the
// config; call it before the launcher starts.
func (e *Env) UseMode(m Mode) {
	e.T.Helper()
	e.Mode = m
	if m == Plain {
		return
	}
	ca := NewCA(e.T, e.Dir)
	_, certPEM, keyPEM := ca.Leaf(e.T, e.Hostname, "127.0.0.1")
	cert, key := filepath.Join(e.Dir, "cert.pem"), filepath.Join(e.Dir, "key.pem")
	for path, b := range map[string][]byte{cert: certPEM, key: keyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			e.T.Fatal(err)
		}
		if IsRoot() {
			Chown(e.T, path, "mail")
		}
	}
	e.Extra["tls"] = "cert_file = \"" + cert + "\"\nkey_file = \"" + key + "\"\n"
	if m == ImplicitTLS {
		e.Extra["tls"] += "implicit = true\n"
	}
	e.clientTLS = &tls.Config{RootCAs: ca.Pool, ServerName: e.Hostname}
	e.WriteConfig()
}

// DialMode connects to addr in the Env's mode and returns the dialogue
// where a plaintext client stands after the 220 greeting: under STARTTLS
// that is inside TLS, before the new EHLO that RFC 3207 4.2 asks for.
func (e *Env) DialMode(addr string) *Dialogue {
	t := e.T
	t.Helper()
	switch e.Mode {
	case StartTLS:
		d := Dial(t, addr, 220)
		d.Cmd("EHLO starttls.test", 250)
		d.Cmd("STARTTLS", 220)
		return handshake(t, d.Conn, e.clientTLS, false)
	case ImplicitTLS:
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return handshake(t, c, e.clientTLS, true)
	}
	return Dial(t, addr, 220)
}

// handshake starts TLS as the client on c and, when greet, reads the
// greeting inside it.
func handshake(t testing.TB, c net.Conn, cfg *tls.Config, greet bool) *Dialogue {
	t.Helper()
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	d := &Dialogue{T: t, Conn: tc, R: bufio.NewReader(tc)}
	if greet {
		d.Expect(220)
	}
	return d
}
