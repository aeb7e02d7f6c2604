package session

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"smtp-bs/pkg/config"
)

// maxLine and maxCommandLine are go-smtp's MaxLineLength and
// MaxCommandLineLength: see Serve.
const (
	maxLine        = 64 << 10
	maxCommandLine = 2048
)

// LoadTLS reads the configured certificate and key and returns the TLS
// settings of a session, or nil when none are configured. It runs at the
// start of each process, one per connection, so a renewed pair is used
// from the next connection on without a reload step.
//
// The files are read and checked for their PEM blocks here, so that a
// missing, unreadable or plainly wrong file is refused before the
// greeting; the certificate and key are parsed only when a client starts
// TLS. Parsing them costs 0.25–0.5 ms in a fresh small program and about
// 1 ms of CPU per connection in smtp-bs with an RSA-2048 key (x509, the
// key's consistency checks, the code it pages in), which every connection
// used to pay before its 220, including those that never say STARTTLS.
// A pair whose PEM blocks hold bad DER, or a key that does not match the
// certificate, now fails that client's handshake, and the same error goes
// to parseFailed (once per process) for the log, since go-smtp logs no
// failed handshake; smtp-bs -check parses the pair in full (pkg/check).
//
// Under [tls] optional the pair is parsed here after all: optional
// promises to serve without STARTTLS rather than offer a TLS that fails,
// and only a parse can tell.
func LoadTLS(c *config.TLS, parseFailed func(error)) (*tls.Config, error) {
	if !c.HasTLS() {
		return nil, nil
	}
	certPEM, keyPEM, err := readPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: cannot load cert_file %s with key_file %s: %w", c.CertFile, c.KeyFile, err)
	}
	parse := func() (*tls.Certificate, error) {
		p, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("tls: cannot load cert_file %s with key_file %s: %w", c.CertFile, c.KeyFile, err)
		}
		return &p, nil
	}
	// Go's default cipher suites; no client certificates.
	if c.Optional {
		p, err := parse()
		if err != nil {
			return nil, err
		}
		return &tls.Config{Certificates: []tls.Certificate{*p}, MinVersion: tls.VersionTLS12}, nil
	}
	pair := sync.OnceValues(func() (*tls.Certificate, error) {
		p, err := parse()
		if err != nil && parseFailed != nil {
			parseFailed(err)
		}
		return p, err
	})
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair() },
		MinVersion:     tls.VersionTLS12,
	}, nil
}

// readPair reads both files and checks, without parsing them, that the
// first holds a certificate and the second a private key, the errors
// tls.X509KeyPair would give for those files.
func readPair(certFile, keyFile string) (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(certFile); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = os.ReadFile(keyFile); err != nil {
		return nil, nil, err
	}
	if !hasPEM(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return nil, nil, errors.New("tls: failed to find any PEM data in certificate input")
	}
	if !hasPEM(keyPEM, func(t string) bool { return t == "PRIVATE KEY" || strings.HasSuffix(t, " PRIVATE KEY") }) {
		return nil, nil, errors.New("tls: failed to find any PEM data in key input")
	}
	return certPEM, keyPEM, nil
}

// hasPEM reports whether b holds a PEM block of a type want accepts.
func hasPEM(b []byte, want func(string) bool) bool {
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return false
		}
		if want(blk.Type) {
			return true
		}
	}
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
