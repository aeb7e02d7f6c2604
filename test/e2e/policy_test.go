package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smtp-bs/internal/testenv"
)

func TestOversizeRefusedAndNothingSpooled(t *testing.T) {
	e := testenv.New(t)
	e.Extra["smtp"] = "max_message_bytes = 10000"
	e.WriteConfig()
	addr := e.SocketActivate()

	d := testenv.Dial(t, addr, 220)
	if !strings.Contains(d.Cmd("EHLO c.test", 250), "SIZE 10000") {
		t.Error("EHLO does not announce SIZE 10000")
	}
	d.Cmd("MAIL FROM:<a@client.example> SIZE=20000", 552)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<b@remote.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 300) + ".\r\n")
	d.Expect(552)
	// The session goes on after the refusal.
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<b@remote.example>", 250)
	d.Send("BDAT 20000 LAST\r\n" + strings.Repeat("x", 20000))
	d.Expect(552)
	d.Cmd("QUIT", 221)
	if ids := e.Queued(); len(ids) != 0 {
		t.Errorf("oversize message spooled: %v", ids)
	}
	for _, dir := range []string{"tmp", "data"} {
		if ents, _ := os.ReadDir(filepath.Join(e.SpoolDir, dir)); len(ents) != 0 {
			t.Errorf("%s/ holds leftovers: %v", dir, ents)
		}
	}
}

func TestTooManyRecipients(t *testing.T) {
	e := testenv.New(t)
	e.Extra["smtp"] = "max_recipients = 3"
	e.WriteConfig()
	addr := e.SocketActivate()
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	for _, r := range []string{"r1", "r2", "r3"} {
		d.Cmdf(250, "RCPT TO:<%s@remote.example>", r)
	}
	d.Cmd("RCPT TO:<r4@remote.example>", 452)
	d.Cmd("DATA", 354)
	d.Send("Subject: three\r\n\r\nx\r\n.\r\n")
	d.Expect(250)
	d.Cmd("QUIT", 221)
	if ids := e.Queued(); len(ids) != 1 {
		t.Fatalf("want 1 message queued, got %v", ids)
	}
	env, _ := os.ReadFile(filepath.Join(e.SpoolDir, "queue", e.Queued()[0]))
	if n := strings.Count(string(env), "\nrcpt "); n != 3 {
		t.Errorf("envelope has %d recipients, want 3:\n%s", n, env)
	}
}

// TestRelayTricks talks from 127.0.0.1 with relay_networks empty: the
// client may send only to the local domain, and none of the classic
// tricks gets mail for elsewhere past that.
// TestRelayTricks runs in every mode (plaintext, after STARTTLS, under
// implicit TLS) with the same expectations: most mail arrives over TLS.
func TestRelayTricks(t *testing.T) {
	for _, m := range testenv.Modes {
		t.Run(string(m), func(t *testing.T) { relayTricks(t, m) })
	}
}

func relayTricks(t *testing.T, m testenv.Mode) {
	e := testenv.New(t)
	e.Extra["smtp"] = `local_domains = ["mx.test.example", "local.example"]` + "\nrelay_networks = []\nmax_errors = 100"
	e.WriteConfig()
	e.UseMode(m)
	addr := e.SocketActivate()

	refused := []string{
		"<user@remote.example>",
		"<user%remote.example@local.example>",
		"<remote.example!user@local.example>",
		"<@local.example:user@remote.example>",
		"<@local.example,@mx.test.example:user@remote.example>",
		`<"user@remote.example"@local.example>`,
		`<"user%remote.example"@local.example>`,
		"<user@local.example.>",
		"<user@remote.example.>",
		"<user@[127.0.0.1]>",
		"<user@[IPv6:::1]>",
		"<user@local.example@remote.example>",
		"<postmaster@remote.example>",
	}
	accepted := []string{
		"<user@local.example>",
		"<User@LOCAL.Example>",
		"<Postmaster>",
		"<postmaster>",
		"<postmaster@mx.test.example>",
	}
	d := e.DialMode(addr)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	for _, r := range refused {
		d.Send("RCPT TO:" + r + "\r\n")
		if code, text := d.Reply(); code < 500 || code > 599 {
			t.Errorf("RCPT TO:%s: want 5xx, got %q", r, text)
		}
	}
	d.Cmd("QUIT", 221)

	d = e.DialMode(addr)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	for _, r := range accepted {
		d.Cmd("RCPT TO:"+r, 250)
	}
	d.Cmd("DATA", 354)
	d.Send("Subject: local\r\n\r\nx\r\n.\r\n")
	d.Expect(250)
	d.Cmd("QUIT", 221)
	ids := e.Queued()
	if len(ids) != 1 {
		t.Fatalf("want 1 queued message, got %v", ids)
	}
	env, _ := os.ReadFile(filepath.Join(e.SpoolDir, "queue", ids[0]))
	for _, line := range strings.Split(string(env), "\n") {
		if strings.HasPrefix(line, "rcpt ") && !strings.HasSuffix(line, "@local.example>") && !strings.HasSuffix(line, "@mx.test.example>") {
			t.Errorf("queued a recipient outside the local domains: %s", line)
		}
	}
	// Postmaster is case-insensitive (RFC 5321 4.5.1): its three
	// spellings above are one recipient.
	if n := strings.Count(string(env), "rcpt <postmaster@mx.test.example>"); n != 1 || strings.Contains(string(env), "rcpt <Postmaster@") {
		t.Errorf("<Postmaster> not queued once for the postmaster of this host:\n%s", env)
	}
	if !strings.Contains(e.Log(), "reject ") || !strings.Contains(e.Log(), "Relay access denied") {
		t.Errorf("refusals are not logged with their reason:\n%s", e.Log())
	}
}

func TestTooManyErrorsEndsSession(t *testing.T) {
	e := testenv.New(t)
	e.Extra["smtp"] = "relay_networks = []\nmax_errors = 3"
	e.WriteConfig()
	addr := e.SocketActivate()
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<x1@remote.example>", 554)
	d.Cmd("RCPT TO:<x2@remote.example>", 554)
	d.Cmd("RCPT TO:<x3@remote.example>", 421)
	if code, text := d.Reply(); code != 0 {
		t.Errorf("session still open after 421: %q", text)
	}
}

func TestBadConfigNamesKeyAndLine(t *testing.T) {
	bin := testenv.Bin(t, "smtp-bs")
	qrun := testenv.Bin(t, "qrun")
	cases := []struct{ toml, want string }{
		{"hostname = \"h.example\"\n[smtp]\nmax_recipents = 5\n", "smtp.max_recipents"},
		{"[smtp]\nrelay_networks = [\"10.0.0.0/33\"]\n", "smtp.relay_networks"},
		{"[smtp]\n\nmax_message_bytes = -1\n", "smtp.max_message_bytes"},
		{"[delivery]\nretry_first = \"soon\"\n", "retry_first"},
		{"run_as = \"root\"\n", "run_as"},
		{"[spool\ndir = 1\n", "table name"},
	}
	lines := []string{":3:", ":2:", ":3:", ":2", ":1:", ":2:"}
	for i, c := range cases {
		p := filepath.Join(t.TempDir(), "bad.toml")
		os.WriteFile(p, []byte(c.toml), 0o644)
		for _, b := range []string{bin, qrun} {
			cmd := exec.Command(b, "-config", p)
			if strings.HasSuffix(b, "qrun") {
				cmd.Args = append(cmd.Args, "-once")
			}
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 78 {
				t.Errorf("%s with %q: want exit 78, got %v\n%s", filepath.Base(b), c.toml, err, out)
			}
			if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), lines[i]) {
				t.Errorf("%s with %q: message %q does not name %q at %q", filepath.Base(b), c.toml, out, c.want, lines[i])
			}
		}
	}
}

func TestStartedAsRootRunsAsMail(t *testing.T) {
	testenv.NeedRoot(t, "to start smtp-bs as root")
	e := testenv.New(t)
	addr := e.SocketActivate() // systemd-socket-activate runs smtp-bs as root
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<b@remote.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("Subject: who\r\n\r\nx\r\n.\r\n")
	d.Expect(250)
	d.Cmd("QUIT", 221)
	mail := lookupUID(t, "mail")
	for _, dir := range []string{"queue"} {
		ents, _ := os.ReadDir(filepath.Join(e.SpoolDir, dir))
		if len(ents) != 1 {
			t.Fatalf("%s/: want one file, got %v", dir, ents)
		}
		fi, _ := os.Stat(filepath.Join(e.SpoolDir, dir, ents[0].Name()))
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != mail[0] || int(st.Gid) != mail[1] {
			t.Errorf("%s/%s owned by %d:%d, want mail %d:%d", dir, ents[0].Name(), st.Uid, st.Gid, mail[0], mail[1])
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s/%s has mode %v: group or others may read mail", dir, ents[0].Name(), fi.Mode())
		}
	}
}

func lookupUID(t *testing.T, name string) [2]int {
	t.Helper()
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	gout, _ := exec.Command("id", "-g", name).Output()
	var uid, gid int
	if _, err := fmtSscan(strings.TrimSpace(string(out)), &uid); err != nil {
		t.Fatal(err)
	}
	fmtSscan(strings.TrimSpace(string(gout)), &gid)
	return [2]int{uid, gid}
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
