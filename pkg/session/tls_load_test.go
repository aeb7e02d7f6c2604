package session_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/session"
)

// LoadTLS refuses at once what is not a certificate and a key at all, and
// leaves parsing to the handshake: a pair that only fails to parse, or a
// key that belongs to another certificate, fails GetCertificate with the
// error LoadTLS used to give.
func TestLoadTLSParsesAtHandshake(t *testing.T) {
	dir := t.TempDir()
	ca := testenv.NewCA(t, dir)
	pair, certPEM, keyPEM := ca.Leaf(t, testHost)
	_, _, otherKey := ca.Leaf(t, testHost)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, key := write("cert.pem", certPEM), write("key.pem", keyPEM)
	badDER := write("bad.pem", []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	for _, tc := range []struct {
		name       string
		cert, key  string
		loadErr    string // LoadTLS's error, "" for none
		handshakes string // GetCertificate's error, "" for the pair
	}{
		{"good", cert, key, "", ""},
		{"no key file", cert, filepath.Join(dir, "missing.pem"), "no such file", ""},
		{"not PEM", cert, write("text.pem", []byte("not a key\n")), "PEM data in key input", ""},
		{"certificate as key", cert, cert, "PEM data in key input", ""},
		{"key as certificate", key, key, "PEM data in certificate input", ""},
		{"bad DER", cert, badDER, "", "cannot load cert_file"},
		{"another key", cert, write("other.pem", otherKey), "", "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Under [tls] optional the parse comes first: a pair that
			// does not parse means serving without TLS, not a TLS that
			// fails every handshake.
			if _, err := session.LoadTLS(&config.TLS{CertFile: tc.cert, KeyFile: tc.key, Optional: true}, nil); (err == nil) != (tc.loadErr == "" && tc.handshakes == "") {
				t.Errorf("optional: LoadTLS error %v", err)
			}
			var logged []error
			cfg, err := session.LoadTLS(&config.TLS{CertFile: tc.cert, KeyFile: tc.key}, func(err error) { logged = append(logged, err) })
			if tc.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.loadErr) || !strings.Contains(err.Error(), tc.key) {
					t.Fatalf("LoadTLS: %v, want an error naming %s with %q", err, tc.key, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Certificates) != 0 || cfg.GetCertificate == nil {
				t.Fatal("the pair is parsed before any handshake")
			}
			got, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: testHost})
			if tc.handshakes != "" {
				if err == nil || !strings.Contains(err.Error(), tc.handshakes) || !strings.Contains(err.Error(), tc.key) {
					t.Fatalf("GetCertificate: %v, want an error naming %s with %q", err, tc.key, tc.handshakes)
				}
				cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: testHost})
				if len(logged) != 1 || logged[0] != err {
					t.Errorf("reported %v, want the error once", logged)
				}
				return
			}
			if err != nil || !got.Leaf.Equal(pair.Leaf) || len(logged) != 0 {
				t.Fatalf("GetCertificate: %v, %v (reported %v)", got, err, logged)
			}
		})
	}
}
