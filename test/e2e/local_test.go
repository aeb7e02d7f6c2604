package e2e

import (
	"encoding/json"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// localEnv is a host that delivers mx.test.example locally into a mail
// spool directory laid out as Debian's /var/mail (root:mail 2775), with
// an aliases file, and relays everything else to a sink.
func localEnv(t *testing.T) (*testenv.Env, *testenv.Sink, string, string) {
	t.Helper()
	testenv.NeedRoot(t, "mailboxes of other users")
	sink := testenv.NewSink(t)
	e := testenv.New(t)
	mail := filepath.Join(e.Dir, "mail")
	os.Mkdir(mail, 0o755)
	exec.Command("chown", "root:mail", mail).Run()
	os.Chmod(mail, 0o2775)
	list := filepath.Join(e.Dir, "staff.list")
	os.WriteFile(list, []byte("lp\n"), 0o644)
	aliases := filepath.Join(e.Dir, "aliases")
	os.WriteFile(aliases, []byte("# test aliases\nroot: nobody\nteam: nobody,\n\tdaemon, :include:"+list+", friend@remote.example\n"), 0o644)
	e.Extra["local"] = fmt.Sprintf("domains = [%q]\naliases = %q\nmail_spool = %q\n", e.Hostname, aliases, mail)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", sink.Addr)
	e.WriteConfig()
	return e, sink, e.SocketActivate(), mail
}

func mboxMessages(t *testing.T, path string) []boxMsg {
	t.Helper()
	py := testenv.NeedPython(t, "python3", "mailbox", "json")
	out, err := exec.Command(py, "../../pkg/mailbox/testdata/readbox.py", "mbox", path).CombinedOutput()
	if err != nil {
		t.Fatalf("readbox.py %s: %v\n%s", path, err, out)
	}
	var msgs []boxMsg
	json.Unmarshal(out, &msgs)
	return msgs
}

type boxMsg struct {
	Subject     string `json:"subject"`
	ReturnPath  string `json:"return_path"`
	DeliveredTo string `json:"delivered_to"`
	Body        string `json:"body"`
}

func TestLocalDeliveryThroughAliases(t *testing.T) {
	e, sink, addr, mail := localEnv(t)
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<s@client.example>", 250)
	d.Cmd("RCPT TO:<nosuchuser@mx.test.example>", 550)
	d.Cmd("RCPT TO:<team@mx.test.example>", 250)
	d.Cmd("RCPT TO:<nobody@MX.TEST.EXAMPLE>", 250)
	d.Cmd("RCPT TO:<Postmaster>", 250)
	d.Cmd("DATA", 354)
	d.Send("Subject: to the team\r\n\r\nFrom the office\r\n.\r\n")
	d.Expect(250)
	d.Cmd("QUIT", 221)

	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun -once: %d %s\n%s", code, out, e.Log())
	}
	// nobody: direct, through team, and through postmaster -> root -> nobody.
	for user, n := range map[string]int{"nobody": 3, "daemon": 1, "lp": 1} {
		msgs := mboxMessages(t, filepath.Join(mail, user))
		if len(msgs) != n {
			t.Errorf("%s: %d messages, want %d", user, len(msgs), n)
			continue
		}
		for _, m := range msgs {
			if m.Subject != "to the team" || m.ReturnPath != "<s@client.example>" || !strings.Contains(m.Body, ">From the office") {
				t.Errorf("%s: %+v", user, m)
			}
		}
		fi, _ := os.Stat(filepath.Join(mail, user))
		if fi.Mode().Perm() != 0o660 {
			t.Errorf("%s: mode %v, want 0660", user, fi.Mode().Perm())
		}
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || msgs[0].Rcpts[0] != "friend@remote.example" || msgs[0].From != "s@client.example" {
		t.Fatalf("the alias's remote member: %+v", msgs)
	}
	if n := len(e.Queued()); n != 0 {
		t.Errorf("%d messages left queued", n)
	}
	out, code := e.Qrun("-route", "team@mx.test.example")
	if code != 0 || !strings.Contains(out, "local") {
		t.Errorf("-route for a local alias: exit %d\n%s", code, out)
	}
	// An unknown user would be refused (sendmail -bv's "User unknown"): 69.
	out, code = e.Qrun("-route", "no-such-user-here@mx.test.example")
	if code != 69 || !strings.Contains(out, "refused at RCPT time") {
		t.Errorf("-route for an unknown local user: exit %d, want 69\n%s", code, out)
	}
}

// TestLocalCrashAfterAppend kills qrun (strace injects SIGKILL) between
// the mbox append and its record in the state log: the next run delivers
// once more, never zero times.
func TestLocalCrashAfterAppend(t *testing.T) {
	strace := testenv.Need(t, "strace")
	e, _, addr, mail := localEnv(t)
	if err := smtp.SendMail(addr, nil, "s@client.example", []string{"daemon@mx.test.example"}, []byte("Subject: once\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	// Kill qrun at its fsync of the mailbox: the message is written but
	// neither fsynced nor recorded. strace counts per thread, so the
	// filter is the mailbox's path, which only one fsync ever touches.
	box := filepath.Join(mail, "daemon")
	cmd := exec.Command(strace, "-f", "-qq", "-P", box, "-e", "trace=fsync", "-e", "inject=fsync:signal=SIGKILL:when=1",
		testenv.Bin(t, "qrun"), "-config", e.CfgFile, "-once")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "SIGKILL") {
		t.Fatalf("qrun was not killed where intended:\n%s", out)
	}
	if n := len(mboxMessages(t, box)); n != 1 {
		t.Fatalf("after the crash: %d copies, want 1 (written, not yet recorded)", n)
	}
	if _, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, e.Log())
	}
	if n := len(mboxMessages(t, filepath.Join(mail, "daemon"))); n < 1 || n > 2 {
		t.Errorf("after recovery: %d copies, want 1 or 2 (at most once more)", n)
	}
	if len(e.Queued()) != 0 {
		t.Error("message still queued")
	}
}

// TestLocalPartFoldingIsASCII: "BİN" and "İNFO" (U+0130) are neither the
// user bin nor the alias info, though Unicode lower-casing makes them so;
// "BIN" and "INFO" are.
func TestLocalPartFoldingIsASCII(t *testing.T) {
	e, _, addr, _ := localEnv(t)
	aliases := filepath.Join(e.Dir, "aliases")
	os.WriteFile(aliases, []byte("info: nobody\n"), 0o644)
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<s@client.example> SMTPUTF8", 250)
	d.Cmd("RCPT TO:<BIN@mx.test.example>", 250)
	d.Cmd("RCPT TO:<INFO@mx.test.example>", 250)
	d.Cmd("RCPT TO:<BİN@mx.test.example>", 550)
	d.Cmd("RCPT TO:<İNFO@mx.test.example>", 550)
	d.Cmd("QUIT", 221)
}
