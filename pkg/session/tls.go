package session

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"smtp-bs/pkg/config"
)

// maxLine is go-smtp's MaxLineLength: see Serve.
const maxLine = 64 << 10

// LoadTLS reads the configured certificate and key and returns the TLS
// settings of a session, or nil when none are configured. It runs at the
// start of each process, one per connection, so a renewed pair is used
// from the next connection on without a reload step.
func LoadTLS(c *config.TLS) (*tls.Config, error) {
	if !c.HasTLS() {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: cannot load cert_file %s with key_file %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   tls.VersionTLS12,
		// Go's default cipher suites; no client certificates.
	}, nil
}

// handshake runs the server side of implicit TLS under a deadline.
func handshake(conn net.Conn, cfg *tls.Config, deadline, hardEnd time.Time) (*tls.Conn, error) {
	if deadline.After(hardEnd) {
		deadline = hardEnd
	}
	conn.SetDeadline(deadline)
	tc := tls.Server(conn, cfg)
	if err := tc.Handshake(); err != nil {
		tc.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return tc, nil
}

// isTLS reports whether the session runs over TLS. Call with b.mu held.
func (b *backend) isTLS() bool {
	_, ok := b.tlsState()
	return ok
}

// tlsState is the TLS of the session: ours under implicit TLS, go-smtp's
// after STARTTLS. Call with b.mu held.
func (b *backend) tlsState() (tls.ConnectionState, bool) {
	if b.tlsConn != nil {
		return b.tlsConn.ConnectionState(), true
	}
	if b.conn == nil {
		return tls.ConnectionState{}, false
	}
	return b.conn.TLSConnectionState()
}

// tlsVersion names a TLS version as Postfix and OpenSSL do: "TLSv1.3".
func tlsVersion(v uint16) string {
	return strings.Replace(tls.VersionName(v), "TLS ", "TLSv", 1)
}

// tlsSummary is the Received header's comment on the TLS in use, in
// Postfix's words: "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128
// bits)".
func tlsSummary(st tls.ConnectionState) string {
	name := tls.CipherSuiteName(st.CipherSuite)
	s := tlsVersion(st.Version) + " with cipher " + name
	if bits := cipherBits(name); bits > 0 {
		s += fmt.Sprintf(" (%d/%d bits)", bits, bits)
	}
	return s
}

// cipherBits is the symmetric key size of a cipher suite, from its name.
func cipherBits(name string) int {
	switch {
	case strings.Contains(name, "AES_128"):
		return 128
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return 256
	case strings.Contains(name, "3DES"):
		return 112
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
