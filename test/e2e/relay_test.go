// Package e2e drives the real smtp-bs and qrun binaries, under the real
// systemd-socket-activate launcher, with clients that are not ours
// (Python's smtplib, swaks, Go's net/smtp) and a go-smtp sink as the
// smarthost.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// relayEnv is an installation relaying to a fresh sink.
func relayEnv(t *testing.T) (*testenv.Env, *testenv.Sink, string) {
	t.Helper()
	sink := testenv.NewSink(t)
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
	e.WriteConfig()
	return e, sink, e.SocketActivate()
}

var queuedRe = regexp.MustCompile(`queued as ([0-9a-z.]+)`)

// stripReceived removes the one Received header smtp-bs prepends (a
// folded field: the first line and its continuation lines).
func stripReceived(t *testing.T, b []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("Received: from ")) {
		t.Fatalf("delivered message does not start with our Received header: %.80q", b)
	}
	i := bytes.Index(b, []byte("\r\n"))
	for i >= 0 && i+2 < len(b) && (b[i+2] == '\t' || b[i+2] == ' ') {
		j := bytes.Index(b[i+2:], []byte("\r\n"))
		i = i + 2 + j
	}
	return b[i+2:]
}

type pyMsg struct {
	From string   `json:"from"`
	To   []string `json:"to"`
	File string   `json:"file"`
	UTF8 bool     `json:"utf8,omitempty"`
}

// pySend sends msgs in one smtplib session and returns the replies.
func pySend(t *testing.T, addr string, msgs []pyMsg) []string {
	t.Helper()
	py := testenv.NeedPython(t, "python3", "smtplib", "json")
	spec := filepath.Join(t.TempDir(), "spec.json")
	b, _ := json.Marshal(msgs)
	os.WriteFile(spec, b, 0o644)
	host, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(py, "testdata/send.py", host, port, spec).CombinedOutput()
	if err != nil {
		t.Fatalf("send.py: %v\n%s", err, out)
	}
	var replies []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r struct {
			OK    bool   `json:"ok"`
			Reply string `json:"reply"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("send.py said %q", line)
		}
		if !r.OK {
			t.Fatalf("send.py: %s%s", r.Error, r.Reply)
		}
		replies = append(replies, r.Reply)
	}
	return replies
}

func writeMsg(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func message(subject, body string) []byte {
	return []byte("From: Sender <sender@client.example>\r\nTo: rcpt@remote.example\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@client.example>\r\n\r\n" + body)
}

func TestRelayEndToEnd(t *testing.T) {
	e, sink, addr := relayEnv(t)

	big := &bytes.Buffer{}
	for big.Len() < 1<<20 {
		fmt.Fprintf(big, "line %07d of a one megabyte message, to see that size is no problem\r\n", big.Len())
	}
	cases := []struct {
		name string
		msg  pyMsg
		data []byte
	}{
		{"plain", pyMsg{From: "sender@client.example", To: []string{"rcpt@remote.example"}}, message("plain", "Hello.\r\n")},
		{"8bit", pyMsg{From: "sender@client.example", To: []string{"rcpt@remote.example"}}, message("8bit", "Grüße aus Köln, ½ € \xff raw byte\r\n")},
		{"dots", pyMsg{From: "sender@client.example", To: []string{"rcpt@remote.example"}}, message("dots", ".leading dot\r\n..two dots\r\n.\r\n. \r\nend\r\n")},
		{"1MB", pyMsg{From: "sender@client.example", To: []string{"rcpt@remote.example"}}, message("1MB", big.String())},
		{"several", pyMsg{From: "sender@client.example", To: []string{"a@remote.example", "b@other.example", "c@third.example"}}, message("several", "To three.\r\n")},
		{"utf8", pyMsg{From: "sender@client.example", To: []string{"jürgen@bücher.example"}, UTF8: true}, message("utf8", "Envelope in UTF-8.\r\n")},
	}
	var msgs []pyMsg
	for _, c := range cases {
		c.msg.File = writeMsg(t, c.name, c.data)
		msgs = append(msgs, c.msg)
	}
	replies := pySend(t, addr, msgs)
	ids := map[string]bool{}
	for i, r := range replies {
		m := queuedRe.FindStringSubmatch(r)
		if m == nil {
			t.Fatalf("%s: reply %q carries no queue ID", cases[i].name, r)
		}
		ids[m[1]] = true
	}
	if len(ids) != len(cases) {
		t.Fatalf("want %d distinct queue IDs, got %v", len(cases), ids)
	}

	// swaks pipelines its commands.
	swaks := testenv.Need(t, "swaks")
	swaksMsg := message("swaks", "Pipelined.\r\n")
	out, err := exec.Command(swaks, "--server", addr, "--pipeline", "--from", "p@client.example", "--to", "q@remote.example",
		"--helo", "swaks.test", "--data", writeMsg(t, "swaks", swaksMsg)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "queued as") {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "PIPELINING") {
		t.Fatalf("EHLO does not offer PIPELINING:\n%s", out)
	}

	// BDAT, in two chunks, spoken raw.
	bdatMsg := message("bdat", "Chunked.\r\n")
	d := testenv.Dial(t, addr, 220)
	ehlo := d.Cmd("EHLO bdat.test", 250)
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO lacks %s:\n%s", ext, ehlo)
		}
	}
	d.Cmd("MAIL FROM:<b@client.example>", 250)
	d.Cmd("RCPT TO:<c@remote.example>", 250)
	half := len(bdatMsg) / 2
	d.Send(fmt.Sprintf("BDAT %d\r\n%s", half, bdatMsg[:half]))
	d.Expect(250)
	d.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(bdatMsg)-half, bdatMsg[half:]))
	if txt := d.Expect(250); !queuedRe.MatchString(txt) {
		t.Fatalf("BDAT reply %q has no queue ID", txt)
	}
	d.Cmd("QUIT", 221)

	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun -once: exit %d\n%s", code, out)
	}
	got := map[string]testenv.Message{}
	for _, m := range sink.Messages() {
		sub := regexp.MustCompile(`Subject: (\S+)`).FindSubmatch(m.Data)
		if sub == nil {
			t.Fatalf("delivered message without subject: %.200q", m.Data)
		}
		if _, dup := got[string(sub[1])]; dup {
			t.Errorf("%s delivered twice", sub[1])
		}
		got[string(sub[1])] = m
	}
	check := func(name string, from string, to []string, data []byte) {
		m, ok := got[name]
		if !ok {
			t.Errorf("%s: not delivered", name)
			return
		}
		if m.From != from || strings.Join(m.Rcpts, ",") != strings.Join(to, ",") {
			t.Errorf("%s: envelope %s -> %v, want %s -> %v", name, m.From, m.Rcpts, from, to)
		}
		if body := stripReceived(t, m.Data); !bytes.Equal(body, data) {
			t.Errorf("%s: content differs (got %d bytes, want %d)", name, len(body), len(data))
		}
		hdr := string(m.Data[:bytes.Index(m.Data, []byte("\r\n\t"))])
		if !strings.Contains(string(m.Data[:300]), "by "+e.Hostname+" (smtp-bs) with ") {
			t.Errorf("%s: Received header lacks our name: %q", name, hdr)
		}
	}
	for _, c := range cases {
		check(c.name, c.msg.From, c.msg.To, c.data)
	}
	// swaks ends the data with its own CRLF before the final dot.
	check("swaks", "p@client.example", []string{"q@remote.example"}, append(swaksMsg, "\r\n"...))
	check("bdat", "b@client.example", []string{"c@remote.example"}, bdatMsg)
	if n := len(e.Queued()); n != 0 {
		t.Errorf("%d messages still queued after delivery", n)
	}
	if m := got["utf8"]; !strings.Contains(string(m.Data[:400]), "with UTF8SMTP") {
		t.Errorf("SMTPUTF8 message's Received header should say UTF8SMTP: %.300q", m.Data)
	}
	for _, ev := range []string{"connect ", "queued id=", "sent id="} {
		if !strings.Contains(e.Log(), ev) {
			t.Errorf("log lacks %q events:\n%s", ev, e.Log())
		}
	}
}

func TestConcurrentSessions(t *testing.T) {
	e, sink, addr := relayEnv(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			msg := message(fmt.Sprintf("concurrent-%02d", i), "Body.\r\n")
			if err := smtp.SendMail(addr, nil, "s@client.example", []string{"r@remote.example"}, msg); err != nil {
				errs <- fmt.Errorf("session %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ids := e.Queued(); len(ids) != n {
		t.Fatalf("want %d distinct queued IDs, got %d", n, len(ids))
	}
	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun: %d %s", code, out)
	}
	seen := map[string]int{}
	for _, m := range sink.Messages() {
		sub := regexp.MustCompile(`Subject: (\S+)`).FindSubmatch(m.Data)
		seen[string(sub[1])]++
	}
	if len(seen) != n {
		t.Errorf("want %d distinct deliveries, got %d", n, len(seen))
	}
	for s, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", s, c)
		}
	}
}

type listItem struct {
	ID      string    `json:"id"`
	NextTry time.Time `json:"next_try"`
	Rcpts   []struct {
		Addr     string `json:"address"`
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
		Reply    string `json:"last_reply"`
	} `json:"recipients"`
}

func list(t *testing.T, e *testenv.Env) []listItem {
	t.Helper()
	out, code := e.Qrun("-list", "-json")
	if code != 0 {
		t.Fatalf("qrun -list -json: %d %s", code, out)
	}
	var items []listItem
	if err := json.Unmarshal([]byte(out), &items); err != nil {
		t.Fatalf("qrun -list -json: %v\n%s", err, out)
	}
	return items
}

func TestSmarthostTemporaryFailureDefers(t *testing.T) {
	e, sink, addr := relayEnv(t)
	sink.SetReplies(func(string) error { return testenv.Reply(451, 4, 3, 0, "try later") }, nil)
	if err := smtp.SendMail(addr, nil, "s@client.example", []string{"r@remote.example"}, message("deferred", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if out, code := e.Qrun("-once"); code != 75 {
		t.Fatalf("qrun -once with a deferral: want exit 75 (EX_TEMPFAIL), got %d %s", code, out)
	}
	items := list(t, e)
	if len(items) != 1 || items[0].Rcpts[0].State != "deferred" || !strings.Contains(items[0].Rcpts[0].Reply, "451") {
		t.Fatalf("want one deferred message with the 451, got %+v", items)
	}
	if !items[0].NextTry.After(before.Add(4 * time.Minute)) {
		t.Errorf("next try %v is not about 5 minutes ahead", items[0].NextTry)
	}
	// Not due: a second pass leaves it alone.
	e.Qrun("-once")
	if items := list(t, e); items[0].Rcpts[0].Attempts != 1 {
		t.Errorf("a pass retried a message that was not due: %+v", items)
	}
	if len(sink.Messages()) != 0 {
		t.Error("sink got a message it refused")
	}
	out, _ := e.Qrun("-list")
	if !strings.Contains(out, "deferred") || !strings.Contains(out, "r@remote.example") {
		t.Errorf("qrun -list does not show the deferred recipient:\n%s", out)
	}
}

func TestSmarthostPermanentFailureBouncesOnlyThatRecipient(t *testing.T) {
	e, sink, addr := relayEnv(t)
	sink.SetReplies(func(r string) error {
		if strings.HasPrefix(r, "bad@") {
			return testenv.Reply(550, 5, 1, 1, "no such user")
		}
		return nil
	}, nil)
	err := smtp.SendMail(addr, nil, "s@client.example", []string{"good@remote.example", "bad@remote.example"}, message("mixed", "x\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, code := e.Qrun("-once"); code != 69 {
		t.Errorf("qrun -once with a bounce: want exit 69 (EX_UNAVAILABLE), got %d", code)
	}
	// One run delivers the good recipient and then the bounce it queued.
	msgs := sink.Messages()
	if len(msgs) < 1 || strings.Join(msgs[0].Rcpts, ",") != "good@remote.example" {
		t.Fatalf("want the good recipient delivered alone, got %+v", msgs)
	}
	if len(msgs) != 2 {
		t.Fatalf("want a bounce delivered, got %d messages", len(msgs))
	}
	b := msgs[1]
	if b.From != "" || strings.Join(b.Rcpts, ",") != "s@client.example" {
		t.Fatalf("bounce envelope %q -> %v, want <> -> s@client.example", b.From, b.Rcpts)
	}
	for _, want := range []string{"multipart/report", "report-type=delivery-status", "Final-Recipient: rfc822; bad@remote.example",
		"Action: failed", "Status: 5.1.1", "550", "Subject: mixed"} {
		if !bytes.Contains(b.Data, []byte(want)) {
			t.Errorf("bounce lacks %q:\n%s", want, b.Data)
		}
	}
	if bytes.Contains(b.Data, []byte("good@remote.example")) && bytes.Contains(b.Data, []byte("Final-Recipient: rfc822; good")) {
		t.Error("bounce reports the recipient that was delivered")
	}
	if n := len(e.Queued()); n != 0 {
		t.Errorf("%d messages left in the queue", n)
	}
}

func TestNullSenderIsNeverBounced(t *testing.T) {
	e, sink, addr := relayEnv(t)
	sink.SetReplies(func(string) error { return testenv.Reply(550, 5, 1, 1, "no") }, nil)
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<>", 250)
	d.Cmd("RCPT TO:<x@remote.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("Subject: a bounce\r\n\r\nx\r\n.\r\n")
	d.Expect(250)
	e.Qrun("-once")
	e.Qrun("-once")
	if n := len(e.Queued()); n != 0 {
		t.Errorf("%d messages queued; a failed bounce must be dropped, not bounced", n)
	}
	if len(sink.Messages()) != 0 {
		t.Error("something was delivered")
	}
}

func TestSecondQrunExitsWhileLocked(t *testing.T) {
	e, _, _ := relayEnv(t)
	// qrun -interval keeps the lock while it waits for its next pass.
	cmd := testenv.Start(t, testenv.Bin(t, "qrun"), "-config", e.CfgFile, "-interval", "1h")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.Log(), "pass ") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	// On a pipe (cron mails what it gets) the harmless overlap is quiet.
	out, code := e.Qrun("-once")
	if code != 0 || out != "" {
		t.Fatalf("second qrun: exit %d, %q; want exit 0 and nothing said on a pipe", code, out)
	}
	// To a person (a terminal, or a file) it says why it did nothing.
	errFile := filepath.Join(t.TempDir(), "stderr")
	f, _ := os.Create(errFile)
	second := exec.Command(testenv.Bin(t, "qrun"), "-config", e.CfgFile, "-once")
	second.Stderr = f
	err := second.Run()
	f.Close()
	if b, _ := os.ReadFile(errFile); err != nil || !strings.Contains(string(b), "another qrun") {
		t.Fatalf("second qrun with stderr to a file: %v, %q; want exit 0 saying another qrun runs", err, b)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second qrun took %v to give up", d)
	}
	// -list works while the lock is held.
	if _, code := e.Qrun("-list"); code != 0 {
		t.Errorf("qrun -list while locked: exit %d", code)
	}
	// SIGTERM ends the loop cleanly.
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("qrun loop exited with %v after SIGINT", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("qrun loop did not stop on SIGINT")
	}
}
