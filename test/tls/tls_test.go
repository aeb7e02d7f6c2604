package tls_test

import (
	"crypto/tls"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
)

// The handshake as openssl sees it: TLS 1.3 by default, 1.2 when asked,
// nothing older, and a certificate that verifies for our name.
func TestOpenSSLStartTLS(t *testing.T) {
	s := newSite(t, "", "", "")
	addr := s.activate()
	openssl := testenv.NeedOpenSSL(t, "-starttls", "-verify_hostname", "-brief", "-tls1_2", "-tls1_1")
	run := func(extra ...string) (string, error) {
		args := append([]string{"s_client", "-starttls", "smtp", "-connect", addr, "-servername", host,
			"-CAfile", s.ca.PEMFile, "-verify_hostname", host, "-verify_return_error", "-brief"}, extra...)
		cmd := exec.Command(openssl, args...)
		cmd.Stdin = strings.NewReader("QUIT\r\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err != nil || !strings.Contains(out, "Protocol version: TLSv1.3") || !strings.Contains(out, "Verification: OK") {
		t.Errorf("default handshake: %v\n%s", err, out)
	}
	out, err = run("-tls1_2")
	if err != nil || !strings.Contains(out, "Protocol version: TLSv1.2") {
		t.Errorf("TLS 1.2: %v\n%s", err, out)
	}
	out, err = run("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
	if err == nil || strings.Contains(out, "Protocol version: TLSv1.1") {
		t.Errorf("TLS 1.1 was accepted:\n%s", out)
	}
	// The same with Go's client, which can offer TLS 1.0/1.1 for sure.
	cfg := s.tlsConfig()
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, _, err := s.startTLS(addr, cfg); err == nil {
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

// AUTH before STARTTLS is refused, and not even offered.
func TestAuthBeforeTLSRefused(t *testing.T) {
	s := newSite(t, "", "", "")
	addr := s.activate()
	d := testenv.Dial(t, addr, 220)
	ehlo := d.Cmd("EHLO c.test", 250)
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before TLS:\n%s", ehlo)
	}
	if txt := d.Cmd("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3", 523); !strings.Contains(txt, "5.7.10") {
		t.Errorf("AUTH before TLS: %q", txt)
	}
	d.Cmd("AUTH LOGIN", 523)
	d.Cmd("QUIT", 221)
	out, code, _ := swaks(t, addr, "--to", "x@remote.example", "--from", "alice@"+host,
		"--auth", "PLAIN", "--auth-user", "alice", "--auth-password", users["alice"])
	if code == 0 {
		t.Errorf("swaks authenticated without TLS:\n%s", out)
	}
	if strings.Contains(s.e.Log(), "result=ok") {
		t.Error("an AUTH without TLS succeeded")
	}
}

// The submission config (587): STARTTLS, then AUTH, then relay; each
// mechanism with swaks; the spooled Received header says ESMTPSA with
// the cipher and the user.
func TestSwaksSubmission(t *testing.T) {
	s := newSite(t, "require_auth = true", "", "")
	addr := s.activate()
	for _, c := range []struct{ mech, user string }{{"PLAIN", "alice"}, {"LOGIN", "bob"}} {
		out, code, _ := swaks(t, addr, "--tls", "--tls-verify", "--tls-ca-path", s.ca.PEMFile,
			"--auth", c.mech, "--auth-user", c.user, "--auth-password", users[c.user],
			"--from", c.user+"@"+host, "--to", "friend@remote.example", "--header", "Subject: "+c.mech)
		if code != 0 || !strings.Contains(out, "Authentication succeeded") || !strings.Contains(out, "queued as") {
			t.Fatalf("swaks --auth %s: exit %d\n%s", c.mech, code, out)
		}
	}
	got := s.spooled()
	if len(got) != 2 {
		t.Fatalf("spooled %d messages", len(got))
	}
	for env, data := range got {
		user := strings.TrimSuffix(env.From, "@"+host)
		for _, want := range []string{"with ESMTPSA id " + env.ID, "(using TLSv1.3 with cipher TLS_", "bits)",
			"(Authenticated sender: " + user + ")"} {
			if !strings.Contains(data, want) {
				t.Errorf("%s: Received header lacks %q:\n%s", env.ID, want, data[:min(len(data), 600)])
			}
		}
		if env.Protocol != "ESMTPSA" || env.Rcpts[0] != "friend@remote.example" {
			t.Errorf("envelope %+v", env)
		}
	}
	log := s.e.Log()
	for _, want := range []string{"auth=alice", "auth=bob", "tls=TLSv1.3/TLS_"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	for _, pw := range users {
		if strings.Contains(log, pw) {
			t.Errorf("a password is in the log")
		}
	}
}

// On the submission config nobody relays without AUTH, and MAIL comes
// only after AUTH; on a gateway config without require_auth the relay
// check still holds.
func TestRelayWithoutAuthRefused(t *testing.T) {
	s := newSite(t, "require_auth = true", "", "")
	addr := s.activate()
	out, code, _ := swaks(t, addr, "--tls", "--from", "alice@"+host, "--to", "friend@remote.example")
	if code == 0 || !strings.Contains(out, "530 5.7.0 Authentication required") {
		t.Errorf("submission without AUTH: exit %d\n%s", code, out)
	}
	g := newSite(t, "", "", "")
	gaddr := g.activate()
	out, code, _ = swaks(t, gaddr, "--tls", "--from", "alice@"+host, "--to", "friend@remote.example")
	if code == 0 || !strings.Contains(out, "554 5.7.1 Relay access denied") {
		t.Errorf("relay without AUTH: exit %d\n%s", code, out)
	}
	// Local mail needs no AUTH on the gateway.
	out, code, _ = swaks(t, gaddr, "--tls", "--from", "someone@remote.example", "--to", "alice@"+host)
	if code != 0 {
		t.Errorf("inbound mail on the gateway: exit %d\n%s", code, out)
	}
	// With AUTH the gateway relays too.
	out, code, _ = swaks(t, gaddr, "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", users["alice"],
		"--from", "alice@"+host, "--to", "friend@remote.example")
	if code != 0 {
		t.Errorf("relay with AUTH: exit %d\n%s", code, out)
	}
	if len(s.e.Queued()) != 0 || len(g.e.Queued()) != 2 {
		t.Errorf("queued: submission %v, gateway %v", s.e.Queued(), g.e.Queued())
	}
}

// A wrong password is refused after the configured delay; the third
// failure ends the session with 421.
func TestWrongPasswordDelayed(t *testing.T) {
	s := newSite(t, "require_auth = true", "", "max_failures = 3")
	addr := s.activate()
	const delay = 300 * time.Millisecond
	out, code, took := swaks(t, addr, "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "not-her-password",
		"--from", "alice@"+host, "--to", "friend@remote.example")
	if code == 0 || !strings.Contains(out, "535 5.7.8") {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
	if took < delay {
		t.Errorf("refused after %v, want at least %v", took, delay)
	}

	d, _, err := s.startTLS(addr, s.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	d.Cmd("EHLO c.test", 250)
	for i := 1; i <= 2; i++ {
		start := time.Now()
		d.Cmd("AUTH PLAIN AGFsaWNlAHdyb25n", 535) // \0alice\0wrong
		if el := time.Since(start); el < delay {
			t.Errorf("failure %d answered after %v", i, el)
		}
	}
	if txt := d.Cmd("AUTH PLAIN AGJvYgB3cm9uZw==", 421); !strings.Contains(txt, "4.7.0") {
		t.Errorf("third failure: %q", txt)
	}
	if code, txt := d.Reply(); code != 0 {
		t.Errorf("the session goes on: %q", txt)
	}
	log := s.e.Log()
	if strings.Contains(log, "not-her-password") || !strings.Contains(log, "user=alice result=failed") {
		t.Errorf("log:\n%s", log)
	}
}

// The envelope sender must belong to the authenticated user.
func TestSenderOwnership(t *testing.T) {
	s := newSite(t, "require_auth = true", "", "[auth.senders]\nbob = [\"bob@example.org\", \"@bob.example\"]")
	addr := s.activate()
	auth := func(user string) []string {
		return []string{"--tls", "--auth", "PLAIN", "--auth-user", user, "--auth-password", users[user], "--to", "friend@remote.example"}
	}
	for _, c := range []struct {
		user, from string
		ok         bool
	}{
		{"alice", "alice@" + host, true},
		{"alice", "bob@" + host, false},
		{"alice", "alice@remote.example", false},
		{"bob", "bob@" + host, false}, // bob has a list: only it counts
		{"bob", "bob@example.org", true},
		{"bob", "anything@bob.example", true},
	} {
		out, code, _ := swaks(t, addr, append(auth(c.user), "--from", c.from)...)
		if c.ok != (code == 0) {
			t.Errorf("%s as <%s>: exit %d\n%s", c.user, c.from, code, out)
		}
		if !c.ok && !strings.Contains(out, "553 5.7.1 Sender address not owned by user") {
			t.Errorf("%s as <%s>: %s", c.user, c.from, out)
		}
	}
}

// Implicit TLS (port 465), by flag and by config, with swaks --tlsc and
// smtplib's SMTP_SSL; STARTTLS with smtplib's starttls().
func TestImplicitTLSAndSmtplib(t *testing.T) {
	py := testenv.NeedPython(t, "python3", "smtplib", "ssl")
	script := filepath.Join("testdata", "submit.py")
	s := newSite(t, "require_auth = true", "", "")
	for name, addr := range map[string]string{"flag": s.activate("-tls-wrapper"), "starttls": s.activate()} {
		mode := "ssl"
		if name == "starttls" {
			mode = "starttls"
		} else {
			out, code, _ := swaks(t, addr, "--tlsc", "--tls-verify", "--tls-ca-path", s.ca.PEMFile,
				"--auth", "LOGIN", "--auth-user", "bob", "--auth-password", users["bob"],
				"--from", "bob@"+host, "--to", "friend@remote.example")
			if code != 0 || !strings.Contains(out, "queued as") {
				t.Errorf("swaks --tlsc: exit %d\n%s", code, out)
			}
		}
		h, p, _ := net.SplitHostPort(addr)
		out, err := exec.Command(py, script, h, p, mode, s.ca.PEMFile, "alice", users["alice"], "alice@"+host, "friend@remote.example").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "version TLSv1.3") {
			t.Errorf("smtplib %s: %v\n%s", mode, err, out)
		}
		out, err = exec.Command(py, script, h, p, mode, s.ca.PEMFile, "alice", "wrong", "alice@"+host, "friend@remote.example").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "535") {
			t.Errorf("smtplib %s with a wrong password: %v\n%s", mode, err, out)
		}
	}
	// [tls] implicit = true does the same without the flag.
	c := newSite(t, "require_auth = true", "implicit = true", "")
	addr := c.activate()
	h, p, _ := net.SplitHostPort(addr)
	out, err := exec.Command(py, script, h, p, "ssl", c.ca.PEMFile, "bob", users["bob"], "bob@"+host, "friend@remote.example").CombinedOutput()
	if err != nil {
		t.Errorf("smtplib, implicit by config: %v\n%s", err, out)
	}
	got := s.spooled()
	if len(got) != 3 {
		t.Errorf("spooled %d messages, want 3", len(got))
	}
	for env, data := range got {
		if env.Protocol != "ESMTPSA" || !strings.Contains(data, "(using TLSv1.3") {
			t.Errorf("%s: %s\n%s", env.ID, env.Protocol, data[:min(len(data), 500)])
		}
	}
}

// REQUIRETLS (RFC 8689): offered inside TLS, recorded in the envelope.
func TestREQUIRETLSRecorded(t *testing.T) {
	py := testenv.NeedPython(t, "python3", "smtplib", "ssl")
	s := newSite(t, "", "", "")
	addr := s.activate()
	h, p, _ := net.SplitHostPort(addr)
	out, err := exec.Command(py, filepath.Join("testdata", "submit.py"), h, p, "starttls", s.ca.PEMFile, "", "",
		"someone@remote.example", "alice@"+host, "REQUIRETLS").CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s", err, out)
	}
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<someone@remote.example> REQUIRETLS", 530)
	for env := range s.spooled() {
		if !env.RequireTLS {
			t.Errorf("%s: REQUIRETLS not recorded", env.ID)
		}
		b, _ := os.ReadFile(filepath.Join(s.e.SpoolDir, "queue", env.ID))
		if !strings.Contains(string(b), "\nrequiretls 1\n") {
			t.Errorf("envelope file:\n%s", b)
		}
	}
}

// One process per connection: a replaced certificate is used by the next
// connection; a broken one is logged and refused with 421, unless
// [tls] optional says to go on without TLS.
func TestCertReload(t *testing.T) {
	s := newSite(t, "", "", "")
	addr := s.activate()
	serial := func() string {
		d, st, err := s.startTLS(addr, s.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		d.Cmd("QUIT", 221)
		return st.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	second := s.newLeaf()
	if got := serial(); got != second || got == first {
		t.Errorf("after the renewal the server presents %s, want %s (was %s)", got, second, first)
	}

	s.writeSecret(s.key, "not a key\n")
	d := testenv.Dial(t, addr, 421)
	_ = d
	if !s.waitLog("stage=tls") || !strings.Contains(s.e.Log(), s.key) {
		t.Errorf("the broken pair is not logged clearly:\n%s", s.e.Log())
	}

	// A key that parses only at STARTTLS, and belongs to another
	// certificate: the greeting does not wait for the parse, and the
	// client that starts TLS gets a failed handshake, logged.
	_, _, otherKey := s.ca.Leaf(t, host, "127.0.0.1")
	s.writeSecret(s.key, string(otherKey))
	if _, _, err := s.startTLS(addr, s.tlsConfig()); err == nil {
		t.Error("a handshake succeeded with a key that does not match the certificate")
	}
	if !s.waitLog("does not match") || strings.Count(s.e.Log(), s.key) < 2 {
		t.Errorf("the mismatched pair is not logged clearly:\n%s", s.e.Log())
	}
	s.newLeaf()

	s.writeSecret(s.key, "not a key\n")
	s.e.Top = strings.Replace(s.e.Top, "[tls]\n", "[tls]\noptional = true\n", 1)
	s.e.WriteConfig()
	d = testenv.Dial(t, addr, 220)
	if ehlo := d.Cmd("EHLO c.test", 250); strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS offered without a usable pair:\n%s", ehlo)
	}
	d.Cmd("MAIL FROM:<someone@remote.example>", 250)
	d.Cmd("RCPT TO:<alice@"+host+">", 250)
	d.Cmd("QUIT", 221)
	if !s.waitLog("serving without STARTTLS") {
		t.Errorf("running without TLS is not logged:\n%s", s.e.Log())
	}
}

// contrib/submission.toml, the config of the 587/465 units, is valid and
// says what the units rely on.
func TestSubmissionExampleConfig(t *testing.T) {
	c, err := config.Load(filepath.Join(testenv.Root(), "contrib", "submission.toml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if !c.SMTP.RequireAuth || c.SMTP.RelayAllowed(netip.MustParseAddr("127.0.0.1")) || !c.TLS.HasTLS() || c.Auth.CredentialsFile == "" {
		t.Errorf("contrib/submission.toml: %+v %+v %+v", c.SMTP, c.TLS, c.Auth)
	}
	for _, unit := range []string{"smtp-bs-submission@.service", "smtp-bs-smtps@.service"} {
		b, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "systemd", unit))
		if err != nil || !strings.Contains(string(b), "-config /etc/smtp-bs/submission.toml") {
			t.Errorf("%s does not run the submission config: %v", unit, err)
		}
	}
}

// TestAuthMemoryPerAttempt: a wrong password, for a user that exists and
// for one that does not, costs a real smtp-bs process little memory with
// the hashes -hash-password makes (it was 140 MB per attempt with
// argon2id m=64 MiB, p=4; the submission socket allows 32 sessions).
func TestAuthMemoryPerAttempt(t *testing.T) {
	s := newSite(t, "", "", "")
	ssa := testenv.Need(t, "systemd-socket-activate")
	addr := testenv.FreePort(t)
	cmd := testenv.Start(t, ssa, "-l", addr, "--accept", testenv.Bin(t, "smtp-bs"), "-config", s.e.CfgFile)
	testenv.WaitListen(t, addr)
	d, _, err := s.startTLS(addr, s.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	pid, err := testenv.WaitChild(cmd.Process.Pid, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d.Cmd("EHLO c.test", 250)
	before, _ := testenv.Status(pid, "VmHWM")
	d.Cmd("AUTH PLAIN AGFsaWNlAHdyb25n", 535)     // \0alice\0wrong: argon2id
	d.Cmd("AUTH PLAIN AG5vYm9keQB3cm9uZw==", 535) // \0nobody\0wrong: the dummy
	hwm, err := testenv.Status(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smtp-bs peak RSS: %.1f MB before AUTH, %.1f MB after two failed AUTHs", float64(before)/(1<<20), float64(hwm)/(1<<20))
	if hwm > 24<<20 {
		t.Errorf("smtp-bs peak RSS %d MB after two failed AUTHs, want under 24 MB", hwm>>20)
	}
}

// TestCostlyHashRefusedAtStart: a credentials line above [auth]
// max_hash_memory_kib stops smtp-bs at startup (exit 78, logged with its
// line), rather than letting every AUTH attempt allocate 64 MiB.
func TestCostlyHashRefusedAtStart(t *testing.T) {
	s := newSite(t, "", "", "")
	s.writeSecret(s.creds, "# old\nalice:$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$"+strings.Repeat("A", 43)+"\n")
	cmd := exec.Command(testenv.Bin(t, "smtp-bs"), "-config", s.e.CfgFile)
	cmd.Stdin = strings.NewReader("QUIT\r\n")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 78 {
		t.Errorf("smtp-bs with a 64 MiB hash: exit %d, want 78\n%s", code, out)
	}
	if log := s.e.Log(); !strings.Contains(log, "credentials") || !strings.Contains(log, ":2:") || !strings.Contains(log, "max_hash_memory_kib") {
		t.Errorf("the log does not name the line and the cap:\n%s", log)
	}
}
