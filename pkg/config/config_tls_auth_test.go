package config

import (
	"errors"
	"testing"
	"time"
)

func TestTLSAuthDefaults(t *testing.T) {
	c, err := Parse("empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS.HasTLS() || c.TLS.Implicit || c.TLS.Optional || c.SMTP.RequireAuth || c.Auth.CredentialsFile != "" {
		t.Errorf("TLS or AUTH on by default: %+v %+v", c.TLS, c.Auth)
	}
	if c.Auth.FailureDelay.Duration != 2*time.Second || c.Auth.MaxFailures != 3 {
		t.Errorf("auth defaults: %+v", c.Auth)
	}
}

func TestTLSAuthValues(t *testing.T) {
	c, err := Parse("t", []byte(`[smtp]
require_auth = true
relay_networks = []
[tls]
cert_file = "/etc/smtp-bs/cert.pem"
key_file = "/etc/smtp-bs/key.pem"
implicit = true
[auth]
credentials_file = "/etc/smtp-bs/credentials"
failure_delay = "50ms"
max_failures = 5
[auth.senders]
alice = ["alice@example.org", "@example.net"]
"bob@example.org" = []
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.HasTLS() || !c.TLS.Implicit || c.TLS.KeyFile != "/etc/smtp-bs/key.pem" || !c.SMTP.RequireAuth {
		t.Errorf("tls: %+v", c.TLS)
	}
	if c.Auth.FailureDelay.Duration != 50*time.Millisecond || c.Auth.MaxFailures != 5 ||
		len(c.Auth.Senders["alice"]) != 2 || c.Auth.Senders["alice"][1] != "@example.net" {
		t.Errorf("auth: %+v", c.Auth)
	}
	if s, ok := c.Auth.Senders["bob@example.org"]; !ok || len(s) != 0 {
		t.Errorf("an empty senders list must stay empty and present: %v %v", s, ok)
	}
}

func TestTLSAuthErrors(t *testing.T) {
	const pair = "[tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n"
	cases := []struct {
		src, key string
		line     int
	}{
		{"[tls]\ncert_file = \"cert.pem\"\nkey_file = \"/k.pem\"\n", "tls.cert_file", 2},
		{"[tls]\ncert_file = \"/c.pem\"\n", "tls.key_file", 0},
		{"[tls]\nkey_file = \"/k.pem\"\n", "tls.cert_file", 0},
		{"[tls]\nimplicit = true\n", "tls.implicit", 2},
		{"[tls]\noptional = \"yes\"\n", "", 2},
		{"[tls]\nciphers = []\n", "tls.ciphers", 2},
		{"[auth]\ncredentials_file = \"creds\"\n", "auth.credentials_file", 2},
		{"[auth]\nfailure_delay = \"-1s\"\n", "auth.failure_delay", 2},
		{"[auth]\nfailure_delay = \"10m\"\n", "auth.failure_delay", 2},
		{"[auth]\nmax_failures = 0\n", "auth.max_failures", 2},
		{"[auth.senders]\nalice = [\"example.org\"]\n", "auth.senders.alice", 2},
		{"[auth.senders]\nalice = [\"a@b@c\"]\n", "auth.senders.alice", 2},
		{"[auth.senders]\nalice = \"alice@example.org\"\n", "", 2},
		{"[auth.senders]\n\"a:b\" = [\"a@example.org\"]\n", "auth.senders.a:b", 0},
		{"[smtp]\nrequire_auth = true\n" + pair, "smtp.require_auth", 2},
		{"[smtp]\nrequire_auth = true\n[auth]\ncredentials_file = \"/x\"\n", "smtp.require_auth", 2},
	}
	for _, c := range cases {
		_, err := Parse("f.toml", []byte(c.src))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: want *Error, got %v", c.src, err)
			continue
		}
		if c.key != "" && ce.Key != c.key {
			t.Errorf("%q: key %q, want %q (%v)", c.src, ce.Key, c.key, err)
		}
		if c.line != 0 && ce.Line != c.line {
			t.Errorf("%q: line %d, want %d (%v)", c.src, ce.Line, c.line, err)
		}
	}
}
