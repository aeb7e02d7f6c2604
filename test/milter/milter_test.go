// Package milter drives the real smtp-bs, under systemd-socket-activate,
// with real milters: a go-milter server written here that answers every
// verdict and makes every change the protocol has, Debian's OpenDKIM
// (whose signature on the delivered copy Debian's python3-dkim verifies),
// and milters that are down or hang.
package milter

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// env is an installation with the given [[milter]] tables, relaying to a
// fresh sink, under systemd-socket-activate.
func env(t *testing.T, milters string) (*testenv.Env, *testenv.Sink, string) {
	t.Helper()
	sink := testenv.NewSink(t)
	e := testenv.New(t)
	e.Top = milters
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
	e.WriteConfig()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("smtp-bs log:\n%s", e.Log())
		}
	})
	return e, sink, e.SocketActivate()
}

func milterTable(name, socket string, extra ...string) string {
	return fmt.Sprintf("[[milter]]\nname = %q\nsocket = %q\n%s\n", name, socket, strings.Join(extra, "\n"))
}

var queuedRe = regexp.MustCompile(`queued as ([0-9a-z.]+)`)

// send runs one transaction and returns the final reply's text; rcpts
// with a "!" prefix must be refused with that code ("!550 reject-me@x").
func send(t *testing.T, d *testenv.Dialogue, from string, rcpts []string, msg string, want int) string {
	t.Helper()
	d.Cmdf(250, "MAIL FROM:<%s>", from)
	for _, r := range rcpts {
		code := 250
		if strings.HasPrefix(r, "!") {
			fmt.Sscanf(r[1:4], "%d", &code)
			r = strings.TrimSpace(r[4:])
		}
		d.Cmdf(code, "RCPT TO:<%s>", r)
	}
	d.Cmd("DATA", 354)
	d.Send(msg + ".\r\n")
	code, text := d.Reply()
	if code != want {
		t.Fatalf("end of DATA: want %d, got %q", want, text)
	}
	return text
}

func message(subject, extra, body string) string {
	return "From: Sender <sender@client.example>\r\nTo: rcpt@remote.example\r\nSubject: " + subject + "\r\n" + extra +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@client.example>\r\n\r\n" + body
}

func readEnvelope(t *testing.T, e *testenv.Env, dir, id string) *spool.Envelope {
	t.Helper()
	if _, err := os.Stat(filepath.Join(e.SpoolDir, dir, id)); err != nil {
		t.Fatal(err)
	}
	env, _ := e.Message(id)
	return env
}

// TestMilterModifications: every change a milter can ask for is made
// before the message is spooled, the envelope changes are in the spool's
// envelope, and what is delivered is the changed message, with our
// Received header untouched on top.
func TestMilterModifications(t *testing.T) {
	socket, seen := startMilter(t, "tcp")
	e, sink, addr := env(t, milterTable("test", socket))

	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO client.example", 250)
	text := send(t, d, "sender@client.example", []string{"kept@remote.example", "removed@remote.example"},
		message("modify", "X-Remove-Me: bye\r\nX-Folded: first line\r\n\tsecond line\r\n", "Original body.\r\n"), 250)
	d.Cmd("QUIT", 221)
	id := queuedRe.FindStringSubmatch(text)[1]

	env := readEnvelope(t, e, "queue", id)
	if env.From != "new-sender@client.example" {
		t.Errorf("spooled sender %q, want the milter's new-sender@client.example", env.From)
	}
	if strings.Join(env.Rcpts, " ") != "kept@remote.example added@remote.example" {
		t.Errorf("spooled recipients %q, want kept and added (removed deleted)", env.Rcpts)
	}

	_, helo, headers, values := seen.snapshot()
	if len(helo) == 0 || helo[0] != "client.example" {
		t.Errorf("the milter was told HELO %q", helo)
	}
	if len(headers) != 1 || len(headers[0]) == 0 || headers[0][0] != "Received" {
		t.Errorf("the milter saw the header fields %q, want our Received first", headers)
	}
	// Folded fields reach milters with LF line breaks, as from Postfix.
	if v := values["X-Folded"]; v != "first line\n\tsecond line" {
		t.Errorf("the milter saw X-Folded %q", v)
	}

	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun -once: exit %d\n%s", code, out)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("the sink got %d messages, want 1\n%s", len(msgs), e.Log())
	}
	m := msgs[0]
	if m.From != "new-sender@client.example" || strings.Join(m.Rcpts, " ") != "kept@remote.example added@remote.example" {
		t.Errorf("delivered from %q to %q", m.From, m.Rcpts)
	}
	data := string(m.Data)
	head, body, ok := strings.Cut(data, "\r\n\r\n")
	if !ok {
		t.Fatalf("delivered message has no header/body separator: %q", data)
	}
	fields := headerNames(head)
	want := []string{"Received", "X-Inserted", "From", "To", "Subject", "X-Folded", "Message-ID", "X-Milter"}
	if strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Errorf("delivered header fields %q, want %q\n%s", fields, want, head)
	}
	for _, s := range []string{"Subject: changed by the milter\r\n", "X-Milter: added at the end\r\n",
		"X-Folded: first line\r\n\tsecond line\r\n", "X-Inserted: below our Received header\r\n", "by mx.test.example (smtp-bs) with ESMTP id " + id} {
		if !strings.Contains(head+"\r\n", s) {
			t.Errorf("delivered header lacks %q:\n%s", s, head)
		}
	}
	if strings.Contains(head, "forged") || strings.Contains(head, "X-Remove-Me") {
		t.Errorf("delivered header:\n%s", head)
	}
	if body != "Replaced body.\r\n.A line with a leading dot.\r\n" {
		t.Errorf("delivered body %q", body)
	}
	env2 := readEnvelopeLog(t, e.Log(), id)
	if !strings.Contains(env2, "change-from:<new-sender@client.example>") || !strings.Contains(env2, "replace-body") {
		t.Errorf("the log does not list the milter's changes:\n%s", e.Log())
	}
}

// readEnvelopeLog returns the log lines that name id.
func readEnvelopeLog(t *testing.T, log, id string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, id) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func headerNames(head string) []string {
	var names []string
	for _, l := range strings.Split(head, "\r\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		name, _, _ := strings.Cut(l, ":")
		names = append(names, name)
	}
	return names
}

// TestMilterVerdicts: each verdict at each stage, with the milter's own
// code and text where it gave them. The milter listens on a unix socket.
func TestMilterVerdicts(t *testing.T) {
	socket, seen := startMilter(t, "unix")
	e, sink, addr := env(t, milterTable("verdicts", socket))

	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO client.example", 250)
	if text := d.Cmd("MAIL FROM:<spammer@client.example>", 553); !strings.Contains(text, "5.7.1 Sender blocked by the test milter") {
		t.Errorf("MAIL refused with %q, want the milter's text", text)
	}
	text := send(t, d, "sender@client.example",
		[]string{"!550 reject-me@remote.example", "!451 tempfail-me@remote.example", "ok@remote.example"},
		message("reject", "", "Spam.\r\n"), 554)
	if !strings.Contains(text, "554 5.7.0 Your message looks like spam to the milter") {
		t.Errorf("end of DATA refused with %q, want the milter's reply", text)
	}
	if text := send(t, d, "sender@client.example", []string{"ok@remote.example"}, message("tempfail", "", "Later.\r\n"), 451); !strings.Contains(text, "4.7.1") {
		t.Errorf("tempfail at end of DATA: %q, want 451 4.7.1", text)
	}
	discarded := queuedRe.FindStringSubmatch(send(t, d, "sender@client.example", []string{"ok@remote.example"}, message("discard", "", "Gone.\r\n"), 250))[1]
	discarded2 := queuedRe.FindStringSubmatch(send(t, d, "sender@client.example", []string{"discard-me@remote.example", "ok@remote.example"}, message("plain", "", "Gone too.\r\n"), 250))[1]
	held := queuedRe.FindStringSubmatch(send(t, d, "sender@client.example", []string{"ok@remote.example"}, message("quarantine", "", "Held.\r\n"), 250))[1]
	passed := queuedRe.FindStringSubmatch(send(t, d, "sender@client.example", []string{"ok@remote.example"}, message("plain", "", "Fine.\r\n"), 250))[1]
	// BDAT (CHUNKING) goes through the milters as DATA does.
	d.Cmd("MAIL FROM:<sender@client.example>", 250)
	d.Cmd("RCPT TO:<ok@remote.example>", 250)
	chunk := message("reject", "", "Chunked spam.\r\n")
	d.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	if code, text := d.Reply(); code != 554 || !strings.Contains(text, "looks like spam") {
		t.Errorf("BDAT: %q, want the milter's 554", text)
	}
	d.Cmd("QUIT", 221)

	for _, id := range []string{discarded, discarded2} {
		if _, err := os.Stat(filepath.Join(e.SpoolDir, "queue", id)); err == nil {
			t.Errorf("discarded message %s is in the queue", id)
		}
	}
	readEnvelope(t, e, "hold", held)
	if _, err := os.Stat(filepath.Join(e.SpoolDir, "queue", held)); err == nil {
		t.Errorf("quarantined message %s is in queue/, not only in hold/", held)
	}
	log := e.Log()
	for _, want := range []string{
		"discard id=" + discarded, "discard id=" + discarded2,
		"hold id=" + held + ` reason="looks odd to the test milter" milter=verdicts`,
		"milter=verdicts milter_stage=rcpt", "milter=verdicts milter_stage=eom",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// A connect-stage reject: the greeting is ours, every MAIL gets the
	// milter's reply.
	d2 := dialFrom(t, "127.0.0.5", addr)
	d2.Cmd("EHLO client.example", 250)
	if text := d2.Cmd("MAIL FROM:<sender@client.example>", 554); !strings.Contains(text, "5.7.1 Your network is not welcome here") {
		t.Errorf("connect reject: MAIL got %q", text)
	}
	d2.Cmd("QUIT", 221)
	if c, _, _, _ := seen.snapshot(); len(c) < 2 || c[0] != "127.0.0.1" || c[len(c)-1] != "127.0.0.5" {
		t.Errorf("the milter was told of connections from %q", c)
	}

	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun -once: exit %d\n%s", code, out)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Fine.") {
		t.Fatalf("delivered %d messages, want only %s", len(msgs), passed)
	}
}

func dialFrom(t *testing.T, src, addr string) *testenv.Dialogue {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := &testenv.Dialogue{T: t, Conn: c, R: bufio.NewReader(c)}
	d.Expect(220)
	return d
}

// TestMilterDown: a milter nobody listens for, and one that hangs past its
// timeout, get their default_action: tempfail answers 451 4.7.1, accept
// lets the mail through.
func TestMilterDown(t *testing.T) {
	nobody := "inet:" + testenv.FreePort(t)

	t.Run("tempfail", func(t *testing.T) {
		e, _, addr := env(t, milterTable("gone", nobody, `default_action = "tempfail"`, `connect_timeout = "2s"`))
		d := testenv.Dial(t, addr, 220)
		d.Cmd("EHLO client.example", 250)
		if text := d.Cmd("MAIL FROM:<sender@client.example>", 451); !strings.Contains(text, "4.7.1") {
			t.Errorf("MAIL with the milter down: %q, want 451 4.7.1", text)
		}
		d.Cmd("QUIT", 221)
		if log := e.Log(); !strings.Contains(log, "milter=gone stage=connect result=unavailable action=tempfail") {
			t.Errorf("log:\n%s", log)
		}
	})

	t.Run("accept", func(t *testing.T) {
		e, sink, addr := env(t, milterTable("gone", nobody, `default_action = "accept"`))
		d := testenv.Dial(t, addr, 220)
		d.Cmd("EHLO client.example", 250)
		send(t, d, "sender@client.example", []string{"ok@remote.example"}, message("plain", "", "Through.\r\n"), 250)
		d.Cmd("QUIT", 221)
		if out, code := e.Qrun("-once"); code != 0 {
			t.Fatalf("qrun -once: exit %d\n%s", code, out)
		}
		if n := len(sink.Messages()); n != 1 {
			t.Fatalf("delivered %d, want 1\n%s", n, e.Log())
		}
	})

	t.Run("hang", func(t *testing.T) {
		socket, _ := startMilter(t, "tcp")
		e, _, addr := env(t, milterTable("slow", socket, `timeout = "1s"`))
		d := testenv.Dial(t, addr, 220)
		d.Cmd("EHLO client.example", 250)
		text := send(t, d, "sender@client.example", []string{"ok@remote.example"}, message("hang", "", "Slow.\r\n"), 451)
		if !strings.Contains(text, "4.7.1") {
			t.Errorf("a milter past its timeout: %q, want 451 4.7.1", text)
		}
		// Down for the rest of the session: tempfail from then on.
		d.Cmd("MAIL FROM:<sender@client.example>", 451)
		d.Cmd("QUIT", 221)
		if len(e.Queued()) != 0 {
			t.Errorf("queued %v", e.Queued())
		}
	})
}
