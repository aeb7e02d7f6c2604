// Package sendmail drives the real cmd/sendmail against the real smtp-bs
// under systemd-socket-activate on 127.0.0.1, and reads what smtp-bs
// spooled: the envelope in queue/ and the message in data/.
package sendmail

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// mta is an smtp-bs installation listening on 127.0.0.1, and a config for
// sendmail (-C) that points [local] submit_to at it.
type mta struct {
	*testenv.Env
	addr string
}

func newMTA(t *testing.T, extra map[string]string) *mta {
	t.Helper()
	e := testenv.New(t)
	for k, v := range extra {
		e.Extra[k] = v
	}
	e.WriteConfig()
	addr := e.SocketActivate()
	e.Extra["local"] += fmt.Sprintf("\nsubmit_to = %q", addr)
	e.WriteConfig() // smtp-bs reads it at each connection: same config for both
	return &mta{Env: e, addr: addr}
}

type result struct {
	code   int
	stderr string
}

// sendmail runs the command with stdin in, as the test's user, or through
// runuser as another user when asUser is not "".
func sendmail(t *testing.T, asUser, in string, args ...string) result {
	t.Helper()
	return sendmailEnv(t, nil, asUser, in, args...)
}

// sendmailEnv is sendmail with env added to the command's environment.
func sendmailEnv(t *testing.T, env []string, asUser, in string, args ...string) result {
	t.Helper()
	bin := testenv.SendmailBin(t)
	var cmd *exec.Cmd
	if asUser != "" {
		cmd = exec.Command(testenv.Need(t, "runuser"), append([]string{"-u", asUser, "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdin = strings.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sendmail: %v", err)
	}
	if stdout.Len() > 0 {
		t.Errorf("sendmail wrote to stdout: %q", stdout.String())
	}
	return result{code, stderr.String()}
}

// spooled is one message in the queue.
type spooled struct {
	env  *spool.Envelope
	data string
}

// only returns the one message queued since the test began.
func (m *mta) only(t *testing.T) spooled {
	t.Helper()
	ids := m.Queued()
	if len(ids) != 1 {
		t.Fatalf("%d messages queued (%v), want 1\nlog:\n%s", len(ids), ids, m.Log())
	}
	return m.read(t, ids[0])
}

func (m *mta) read(t *testing.T, id string) spooled {
	t.Helper()
	env, data := testenv.ReadMessage(t, m.SpoolDir, id)
	return spooled{env, data}
}

// header returns the value of the first field called name.
func (s spooled) header(name string) string {
	head, _, _ := strings.Cut(s.data, "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// cleanCRLF: every line ends in CRLF, no lone CR or LF anywhere.
func cleanCRLF(s string) bool {
	return strings.Count(s, "\r") == strings.Count(s, "\n") && strings.Count(s, "\r\n") == strings.Count(s, "\n") && strings.HasSuffix(s, "\r\n")
}

func invoker(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// Debian's cron pipes this (LF endings, no body when it reports only the
// job's exit) to "sendmail -FCronDaemon -i -B8BITMIME -oem root"; Vixie
// cron and cronie use -t.
func TestCronStyle(t *testing.T) {
	m := newMTA(t, nil)
	in := "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@mx> /usr/local/bin/nightly\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\nX-Cron-Env: <LOGNAME=root>\n"
	r := sendmail(t, "", in, "-C", m.CfgFile, "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	s := m.only(t)
	me := invoker(t)
	if s.env.From != me+"@mx.test.example" || strings.Join(s.env.Rcpts, ",") != "root@mx.test.example" || s.env.Peer == "local" {
		t.Errorf("envelope: from <%s> rcpts %v peer %s", s.env.From, s.env.Rcpts, s.env.Peer)
	}
	if !cleanCRLF(s.data) {
		t.Errorf("spooled message is not clean CRLF: %q", s.data)
	}
	// Unqualified addresses are qualified with the hostname (issue 19), as
	// Postfix's append_at_myorigin does; the comment stays.
	if s.header("From") != "root@mx.test.example (Cron Daemon)" || s.header("To") != "root@mx.test.example" || s.header("X-Cron-Env") != "<SHELL=/bin/sh>" {
		t.Errorf("cron's headers changed:\n%s", s.data)
	}
	if s.header("Date") == "" || !strings.HasSuffix(s.header("Message-ID"), "@mx.test.example>") {
		t.Errorf("Date: or Message-ID: not added:\n%s", s.data)
	}

	// Debian's form: the recipient as an argument, no -t.
	if r := sendmail(t, "", "Subject: out\n\nline 1\nline 2\n", "-C", m.CfgFile, "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if ids := m.Queued(); len(ids) != 2 {
		t.Fatalf("queued %v", ids)
	} else if s := m.read(t, ids[1]); s.header("From") != "CronDaemon <"+me+"@mx.test.example>" || !strings.HasSuffix(s.data, "\r\n\r\nline 1\r\nline 2\r\n") {
		t.Errorf("From: %q, message:\n%s", s.header("From"), s.data)
	}
}

func TestRecipientsAsArguments(t *testing.T) {
	m := newMTA(t, nil)
	in := "Subject: résumé\n\nÇa marche: 8-bit body\r\nprogress 10%\r50%\r100%\n"
	r := sendmail(t, "", in, "-C", m.CfgFile, "-oi", "--", "alice", "Bob <bob@remote.example>, carol@remote.example", "jörg@bücher.example")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	s := m.only(t)
	want := "alice@mx.test.example,bob@remote.example,carol@remote.example,jörg@bücher.example"
	if got := strings.Join(s.env.Rcpts, ","); got != want {
		t.Errorf("rcpts %s, want %s", got, want)
	}
	if s.env.Body != "8BITMIME" || !s.env.UTF8 {
		t.Errorf("body %s smtputf8 %v, want 8BITMIME and SMTPUTF8", s.env.Body, s.env.UTF8)
	}
	if !cleanCRLF(s.data) || !strings.HasSuffix(s.data, "\r\n\r\nÇa marche: 8-bit body\r\nprogress 10%\r\n50%\r\n100%\r\n") {
		t.Errorf("message:\n%q", s.data)
	}
}

func TestSenderAndFullName(t *testing.T) {
	m := newMTA(t, nil)
	r := sendmail(t, "", "Subject: backup\n\ndone\n", "-C", m.CfgFile, "-f", "backup", "-F", "Nightly Backup", "root")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	s := m.only(t)
	if s.env.From != "backup@mx.test.example" || s.header("From") != "Nightly Backup <backup@mx.test.example>" {
		t.Errorf("from <%s>, From: %q", s.env.From, s.header("From"))
	}
	sendmail(t, "", "From: Ops <ops@example.org>\n\nx\n", "-C", m.CfgFile, "-r<bounces@example.org>", "-FIgnored", "root")
	ids := m.Queued()
	if s := m.read(t, ids[len(ids)-1]); s.env.From != "bounces@example.org" || s.header("From") != "Ops <ops@example.org>" {
		t.Errorf("from <%s>, From: %q", s.env.From, s.header("From"))
	}
}

func TestLoneDot(t *testing.T) {
	m := newMTA(t, nil)
	in := "Subject: dots\n\nbefore\n.\nafter\n.hidden\n"
	if r := sendmail(t, "", in, "-C", m.CfgFile, "root"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if s := m.only(t); !strings.HasSuffix(s.data, "\r\n\r\nbefore\r\n") {
		t.Errorf("without -i a lone dot ends the message:\n%q", s.data)
	}
	for _, flag := range []string{"-i", "-oi"} {
		if r := sendmail(t, "", in, "-C", m.CfgFile, flag, "root"); r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		ids := m.Queued()
		if s := m.read(t, ids[len(ids)-1]); !strings.HasSuffix(s.data, "\r\n\r\nbefore\r\n.\r\nafter\r\n.hidden\r\n") {
			t.Errorf("with %s the dots are data:\n%q", flag, s.data)
		}
	}
}

func TestBccRemovedWithT(t *testing.T) {
	m := newMTA(t, nil)
	in := "To: Ann <ann@remote.example>\nCc: ben@remote.example\nBcc: secret@remote.example,\n hidden@remote.example\nSubject: minutes\n\nsee attached\n"
	if r := sendmail(t, "", in, "-C", m.CfgFile, "-t", "-i", "extra@remote.example"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	s := m.only(t)
	want := "extra@remote.example,ann@remote.example,ben@remote.example,secret@remote.example,hidden@remote.example"
	if got := strings.Join(s.env.Rcpts, ","); got != want {
		t.Errorf("rcpts %s\nwant  %s", got, want)
	}
	if strings.Contains(strings.ToLower(s.data), "bcc:") || strings.Contains(s.data, "secret@") || strings.Contains(s.data, "hidden@") {
		t.Errorf("Bcc: reached the spool:\n%s", s.data)
	}
}

func TestNothingListens(t *testing.T) {
	e := testenv.New(t)
	addr := testenv.FreePort(t)
	e.Extra["local"] = fmt.Sprintf("submit_to = %q", addr)
	e.WriteConfig()
	r := sendmail(t, "", "Subject: x\n\nlost?\n", "-C", e.CfgFile, "root")
	want := "sendmail: cannot hand the message to the mail system at " + addr + ": connection refused; it was not sent\n"
	if r.code != 75 || r.stderr != want {
		t.Errorf("exit %d, stderr %q\nwant 75, %q", r.code, r.stderr, want)
	}
}

// Refused recipients: an unknown local user is 67 (the others still get
// the message), relaying denied is 69.
func TestRefusedRecipients(t *testing.T) {
	m := newMTA(t, map[string]string{
		"local": fmt.Sprintf("domains = [\"mx.test.example\"]\naliases = %q", "/nonexistent/aliases"),
		"smtp":  "relay_networks = []",
	})
	r := sendmail(t, "", "Subject: x\n\nhi\n", "-C", m.CfgFile, "root", "no-such-user-here")
	if r.code != 67 || !strings.Contains(r.stderr, "<no-such-user-here@mx.test.example>: 550 5.1.1") || !strings.Contains(r.stderr, "sent to the other recipients") {
		t.Errorf("exit %d, stderr %q; want 67 naming the unknown user", r.code, r.stderr)
	}
	if s := m.only(t); strings.Join(s.env.Rcpts, ",") != "root@mx.test.example" {
		t.Errorf("rcpts %v", s.env.Rcpts)
	}
	r = sendmail(t, "", "Subject: x\n\nhi\n", "-C", m.CfgFile, "someone@remote.example")
	if r.code != 69 || !strings.Contains(r.stderr, "<someone@remote.example>: 5") || !strings.Contains(r.stderr, "was not sent") {
		t.Errorf("exit %d, stderr %q; want 69 for relaying denied", r.code, r.stderr)
	}
	if n := len(m.Queued()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

func TestRefusedModes(t *testing.T) {
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"-bs"}, "smtp-bs"},
		{[]string{"-bp"}, "qrun -list"},
		{[]string{"-q"}, "qrun -flush"},
		{[]string{"-q30m"}, "qrun -flush"},
	} {
		r := sendmail(t, "", "", c.args...)
		if r.code != 64 || !strings.Contains(r.stderr, c.says) {
			t.Errorf("%v: exit %d, %q", c.args, r.code, r.stderr)
		}
	}
}

// The command needs no privilege: as nobody it submits like anyone else,
// and the envelope names the invoking user.
func TestUnprivileged(t *testing.T) {
	if !testenv.IsRoot() {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to run the command as nobody; CI runs as root")
		}
		t.Skip("needs root to run the command as nobody")
	}
	m := newMTA(t, nil)
	r := sendmail(t, "nobody", "Subject: from nobody\n\nhi\n", "-C", m.CfgFile, "-t", "-i")
	if r.code != 64 {
		t.Errorf("-t without To: exit %d (%s), want 64", r.code, r.stderr)
	}
	r = sendmail(t, "nobody", "Subject: from nobody\n\nhi\n", "-C", m.CfgFile, "-i", "root")
	if r.code != 0 {
		t.Fatalf("as nobody: exit %d: %s", r.code, r.stderr)
	}
	s := m.only(t)
	if s.env.From != "nobody@mx.test.example" || !strings.HasSuffix(s.header("From"), "<nobody@mx.test.example>") {
		t.Errorf("envelope from <%s>, From: %q", s.env.From, s.header("From"))
	}

	// A config nobody may read (root:mail 0640 as installed) means the
	// defaults at the default path; named with -C it is an error (78),
	// as TestUnreadableConfigNamedWithC checks.
	secret := filepath.Join(m.Dir, "secret.toml")
	b, _ := os.ReadFile(m.CfgFile)
	os.WriteFile(secret, b, 0o600)
	r = sendmail(t, "nobody", "Subject: x\n\nhi\n", "-C", secret, "root")
	if r.code != 78 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("unreadable -C config: exit %d, %q; want 78, permission denied", r.code, r.stderr)
	}
}

// A message larger than what the command keeps in memory goes through a
// temporary file and arrives byte for byte.
func TestLargeMessage(t *testing.T) {
	m := newMTA(t, nil)
	var body strings.Builder
	for i := 0; body.Len() < 3<<20; i++ {
		fmt.Fprintf(&body, "line %07d %s\n", i, strings.Repeat("x", 60))
	}
	if r := sendmail(t, "", "Subject: big\n\n"+body.String(), "-C", m.CfgFile, "root"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	s := m.only(t)
	if !strings.HasSuffix(s.data, "\r\n\r\n"+strings.ReplaceAll(body.String(), "\n", "\r\n")) {
		t.Error("large body changed on the way")
	}
}

// A temporary directory the user may not write fails only a message
// that must spill to a file (75, saying why); a small one stays in
// memory and is sent, in the sandbox as always.
func TestUnwritableTempDir(t *testing.T) {
	if !testenv.IsRoot() {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test runs sendmail as nobody")
		}
		t.Skip("needs root (to run sendmail as a user root's directory refuses)")
	}
	m := newMTA(t, nil)
	tmp := t.TempDir() // root's, 0755: nobody may enter it but not write
	for d := tmp; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	env := []string{"TMPDIR=" + tmp}
	r := sendmailEnv(t, env, "nobody", "Subject: small\n\nhi\n", "-v", "-C", m.CfgFile, "root")
	if r.code != 0 {
		t.Fatalf("small message, unwritable TMPDIR: exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "sendmail: sandbox: ") {
		t.Errorf("small message: no sandbox line under -v: %s", r.stderr)
	}
	if s := m.only(t); !strings.Contains(s.data, "Subject: small") {
		t.Errorf("queued %q", s.data)
	}
	big := "Subject: big\n\n" + strings.Repeat(strings.Repeat("x", 70)+"\n", 2<<20/71)
	r = sendmailEnv(t, env, "nobody", big, "-C", m.CfgFile, "root")
	if r.code != 75 || !strings.Contains(r.stderr, "a temporary file for the message") || !strings.Contains(r.stderr, tmp) {
		t.Errorf("large message, unwritable TMPDIR: exit %d, %q; want 75 naming the temporary file and %s", r.code, r.stderr, tmp)
	}
	if ids := m.Queued(); len(ids) != 1 {
		t.Errorf("%d messages queued, want the small one only", len(ids))
	}
}

// TestUnreadableConfigNamedWithC: sendmail -C FILE where the user may not
// read FILE fails with 78, as a missing FILE does, instead of falling
// back to the defaults (and exit 75 when nothing listens there).
func TestUnreadableConfigNamedWithC(t *testing.T) {
	if !testenv.IsRoot() {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test runs sendmail as nobody")
		}
		t.Skip("needs root (to run sendmail as another user)")
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // nobody must reach the file to be refused by it
	}
	cfg := filepath.Join(dir, "private.toml")
	os.WriteFile(cfg, []byte("[local]\nsubmit_to = \"127.0.0.1:9\"\n"), 0o600)
	for _, c := range []struct{ what, path string }{{"unreadable", cfg}, {"missing", filepath.Join(dir, "missing.toml")}} {
		r := sendmail(t, "nobody", "Subject: x\n\nx\n", "-C", c.path, "root")
		if r.code != 78 {
			t.Errorf("%s -C config: exit %d, want 78: %s", c.what, r.code, r.stderr)
		}
	}
}
