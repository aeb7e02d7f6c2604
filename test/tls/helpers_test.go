// Package tls_test runs smtp-bs with STARTTLS, implicit TLS and AUTH under
// systemd-socket-activate --accept, and talks to it with clients that are
// not ours: swaks, Python's smtplib and openssl s_client.
package tls_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

const host = "mx.test.example"

// site is one smtp-bs installation with a test CA's certificate and a
// credentials file: alice (argon2id) and bob (bcrypt), both made with
// smtp-bs -hash-password.
type site struct {
	t     *testing.T
	e     *testenv.Env
	ca    *testenv.CA
	cert  string
	key   string
	creds string
}

// users and their passwords.
var users = map[string]string{"alice": "alice-pw", "bob": "b0b pass:word"}

// newSite prepares the files; tls and auth are extra TOML for [tls] and
// [auth], smtp for [smtp].
func newSite(t *testing.T, smtp, tlsExtra, authExtra string) *site {
	t.Helper()
	e := testenv.New(t)
	s := &site{t: t, e: e, ca: testenv.NewCA(t, e.Dir),
		cert: filepath.Join(e.Dir, "cert.pem"), key: filepath.Join(e.Dir, "key.pem"), creds: filepath.Join(e.Dir, "credentials")}
	s.newLeaf()
	var lines []string
	for _, u := range []string{"alice", "bob"} {
		args := []string{"-hash-password", u}
		if u == "bob" {
			args = append([]string{"-hash-scheme", "bcrypt"}, args...)
		}
		cmd := exec.Command(testenv.Bin(t, "smtp-bs"), args...)
		cmd.Stdin = strings.NewReader(users[u] + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("smtp-bs -hash-password: %v", err)
		}
		lines = append(lines, strings.TrimSpace(string(out)))
	}
	s.writeSecret(s.creds, "# smtp-bs credentials\n"+strings.Join(lines, "\n")+"\n")
	e.Extra["smtp"] = "local_domains = [\"" + host + "\"]\nrelay_networks = []\n" + smtp
	e.Top = fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n%s\n[auth]\ncredentials_file = %q\nfailure_delay = \"300ms\"\n%s\n",
		s.cert, s.key, tlsExtra, s.creds, authExtra)
	e.WriteConfig()
	return s
}

// newLeaf writes a fresh certificate and key and returns its serial.
func (s *site) newLeaf() string {
	s.t.Helper()
	pair, certPEM, keyPEM := s.ca.Leaf(s.t, host, "127.0.0.1")
	s.writeSecret(s.cert, string(certPEM))
	s.writeSecret(s.key, string(keyPEM))
	return pair.Leaf.SerialNumber.String()
}

// writeSecret replaces path atomically, mode 0600, owned by the run user.
func (s *site) writeSecret(path, content string) {
	s.t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if testenv.IsRoot() {
		testenv.Chown(s.t, tmp, "mail")
	}
	if err := os.Rename(tmp, path); err != nil {
		s.t.Fatal(err)
	}
}

// activate runs smtp-bs with args under systemd-socket-activate --accept.
func (s *site) activate(args ...string) string {
	s.t.Helper()
	ssa := testenv.Need(s.t, "systemd-socket-activate")
	addr := testenv.FreePort(s.t)
	testenv.Start(s.t, ssa, append([]string{"-l", addr, "--accept", testenv.Bin(s.t, "smtp-bs"), "-config", s.e.CfgFile}, args...)...)
	testenv.WaitListen(s.t, addr)
	return addr
}

func (s *site) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: s.ca.Pool, ServerName: host}
}

// startTLS dials addr, says EHLO and STARTTLS, and returns the dialogue
// inside TLS with the connection state.
func (s *site) startTLS(addr string, cfg *tls.Config) (*testenv.Dialogue, tls.ConnectionState, error) {
	s.t.Helper()
	d := testenv.Dial(s.t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("STARTTLS", 220)
	tc := tls.Client(d.Conn, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, tls.ConnectionState{}, err
	}
	tc.SetDeadline(time.Time{})
	return &testenv.Dialogue{T: s.t, Conn: tc, R: bufio.NewReader(tc)}, tc.ConnectionState(), nil
}

// swaks runs swaks against addr with args and returns its output, exit
// code and duration.
func swaks(t *testing.T, addr string, args ...string) (string, int, time.Duration) {
	t.Helper()
	bin := testenv.Need(t, "swaks")
	for _, a := range args {
		if strings.HasPrefix(a, "--tls") {
			bin = testenv.NeedSwaksTLS(t)
		}
	}
	h, p, _ := net.SplitHostPort(addr)
	all := append([]string{"--server", h, "--port", p, "--helo", "swaks.test", "--timeout", "20"}, args...)
	start := time.Now()
	out, err := exec.Command(bin, all...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code, time.Since(start)
}

// spooled returns the queued messages' envelopes and contents.
func (s *site) spooled() map[*spool.Envelope]string {
	s.t.Helper()
	sp, err := spool.Open(s.e.SpoolDir, spool.Ops{})
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[*spool.Envelope]string{}
	for _, id := range s.e.Queued() {
		env, err := sp.ReadEnvelope(id)
		if err != nil {
			s.t.Fatal(err)
		}
		f, err := sp.OpenData(env)
		if err != nil {
			s.t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		out[env] = string(b)
	}
	return out
}

// waitLog waits until the log holds want.
func (s *site) waitLog(want string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(s.e.Log(), want) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
