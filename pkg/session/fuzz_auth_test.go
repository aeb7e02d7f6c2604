package session_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"smtp-bs/pkg/auth"
	"smtp-bs/pkg/session"
	"smtp-bs/pkg/spool"
)

const fuzzPassword = "s3cret-pw"

// FuzzAuthExchange drives whole sessions over net.Pipe (AUTH allowed
// without TLS for the test) with arbitrary lines after EHLO, mostly AUTH
// exchanges. Serve must return, a password must never reach the log
// unless the client wrote it in clear on a command line, and AUTH may
// succeed only for alice's password.
func FuzzAuthExchange(f *testing.F) {
	p := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		"AUTH PLAIN " + p("\x00alice\x00"+fuzzPassword),
		"AUTH PLAIN " + p("\x00alice\x00wrong") + "\nAUTH PLAIN " + p("alice\x00alice\x00"+fuzzPassword),
		"AUTH PLAIN\n" + p("\x00alice\x00"+fuzzPassword) + "\nMAIL FROM:<alice@mx.test.example>\nRCPT TO:<x@remote.example>",
		"AUTH LOGIN\n" + p("alice") + "\n" + p(fuzzPassword),
		"AUTH LOGIN " + p("alice") + "\n" + p("nope") + "\nAUTH LOGIN\n*",
		"AUTH PLAIN =\nAUTH PLAIN !!!\nAUTH CRAM-MD5\nAUTH\nAUTH LOGIN\n=\n=",
		"AUTH PLAIN " + p("bob\x00alice\x00"+fuzzPassword) + "\nAUTH PLAIN " + p("\x00\x00") + "\nAUTH PLAIN " + p("x"),
		"MAIL FROM:<a@b.example>\nAUTH PLAIN " + p("\x00alice\x00"+fuzzPassword) + "\nRCPT TO:<x@remote.example>",
	} {
		f.Add([]byte(seed))
	}
	h := newHarness(f, spool.Ops{}, "relay_networks = []")
	session.SetInsecureAuth(h.srv)
	hb, err := bcrypt.GenerateFromPassword([]byte(fuzzPassword), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	creds, err := auth.Parse("fuzz", strings.NewReader("alice:"+string(hb)+"\n"))
	if err != nil {
		f.Fatal(err)
	}
	h.srv.Credentials = creds
	h.srv.Config.Auth.FailureDelay.Duration = 0
	h.srv.Config.SMTP.CommandTimeout.Duration = 5 * time.Second

	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 8<<10 {
			return
		}
		logStart := len(h.log.String())
		c, s := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- h.srv.Serve(t.Context(), s, loopback) }()
		var replies bytes.Buffer
		drained := make(chan struct{})
		go func() { io.Copy(&replies, c); close(drained) }()
		var in bytes.Buffer
		in.WriteString("EHLO fuzz.test\r\n")
		for _, line := range bytes.Split(script, []byte("\n")) {
			in.Write(bytes.TrimSuffix(line, []byte("\r")))
			in.WriteString("\r\n")
		}
		in.WriteString("QUIT\r\n")
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.Write(in.Bytes()) // may stop early: the server can end the session
		ended := true
		select {
		case <-done:
		case <-time.After(time.Second):
			// Still reading, e.g. a message whose end never came: hang up.
			ended = false
			c.Close()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("Serve did not return after the client hung up")
			}
		}
		c.Close()
		<-drained
		log := h.log.String()[logStart:]
		if strings.Contains(log, fuzzPassword) && !bytes.Contains(script, []byte(fuzzPassword)) {
			t.Fatalf("the password reached the log:\n%s", log)
		}
		ok := strings.Contains(log, "user=alice result=ok")
		if got := strings.Contains(replies.String(), "\n235 "); got && !ok || ended && got != ok {
			t.Fatalf("235 and the log disagree:\n%s\n%s", replies.String(), log)
		}
	})
}
