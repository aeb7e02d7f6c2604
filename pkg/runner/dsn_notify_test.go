package runner

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/pkg/spool"
)

// RFC 3461 in bounces: NOTIFY without FAILURE gets none; ENVID comes back
// as Original-Envelope-Id, ORCPT as Original-Recipient, and RET=FULL
// returns the whole message, body included.
func TestBounceHonoursNOTIFYAndRET(t *testing.T) {
	f := &fake{answer: func(string) (spool.Status, string) {
		return spool.Failed, "relay.example said: 550 5.1.1 no such user (in reply to RCPT TO)"
	}}
	r, sp, _ := setup(t, f)
	env := &spool.Envelope{Received: sp.Now(), From: "s@example.org", Rcpts: []string{"never@example.net", "loud@example.net"},
		Peer: "127.0.0.1", Helo: "c", Protocol: "ESMTP", Body: "7BIT", Ret: "FULL", EnvID: "QQ314159",
		DSN: map[string]spool.RcptDSN{"never@example.net": {Notify: []string{"NEVER"}}, "loud@example.net": {Notify: []string{"FAILURE"}, ORcpt: "rfc822;Loud@example.net"}}}
	commit(t, sp, env, "Subject: test\r\nMessage-ID: <x@y>\r\n\r\nthe body itself\r\n")
	if _, err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := sp.ReadEnvelope(env.ID + ".b1")
	if err != nil {
		t.Fatalf("no bounce: %v", err)
	}
	data, _ := sp.OpenData(b)
	content, _ := io.ReadAll(data)
	data.Close()
	for _, want := range []string{"Original-Envelope-Id: QQ314159", "Original-Recipient: rfc822; Loud@example.net",
		"Final-Recipient: rfc822; loud@example.net", "Content-Type: message/rfc822", "the body itself"} {
		if !bytes.Contains(content, []byte(want)) {
			t.Errorf("bounce lacks %q:\n%s", want, content)
		}
	}
	if strings.Contains(string(content), "never@example.net") {
		t.Errorf("NOTIFY=NEVER, yet the bounce names the recipient:\n%s", content)
	}
	if _, err := sp.ReadEnvelope(env.ID + ".b2"); err == nil {
		t.Error("a second bounce")
	}
}

// NOTIFY=SUCCESS to a next hop that does not take DSN onward: qrun sends
// the "relayed" notice itself, once, naming only who asked.
func TestRelayedNoticeForNOTIFYSuccess(t *testing.T) {
	f := &fake{answer: func(string) (spool.Status, string) { return spool.Sent, "relay.example said: 250 ok" }}
	r, sp, _ := setup(t, f)
	env := &spool.Envelope{Received: sp.Now(), From: "s@example.org", Rcpts: []string{"ask@example.net", "plain@example.net"},
		Peer: "127.0.0.1", Helo: "c", Protocol: "ESMTP", Body: "7BIT", EnvID: "QQ1",
		DSN: map[string]spool.RcptDSN{"ask@example.net": {Notify: []string{"SUCCESS"}}}}
	commit(t, sp, env, "Subject: test\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n")
	if _, err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	ents, _ := sp.Scan(nil)
	if len(ents) != 1 || ents[0].ID != env.ID+".s0" {
		t.Fatalf("want only the notice queued, got %+v", ents)
	}
	n, _ := sp.ReadEnvelope(env.ID + ".s0")
	data, _ := sp.OpenData(n)
	content, _ := io.ReadAll(data)
	data.Close()
	for _, want := range []string{"Action: relayed", "Status: 2.0.0", "Final-Recipient: rfc822; ask@example.net", "Original-Envelope-Id: QQ1"} {
		if !bytes.Contains(content, []byte(want)) {
			t.Errorf("notice lacks %q:\n%s", want, content)
		}
	}
	if bytes.Contains(content, []byte("plain@")) || n.From != "" || n.Rcpts[0] != "s@example.org" {
		t.Errorf("notice %+v:\n%s", n, content)
	}
}

// commit queues content under env, due now on the test's clock.
func commit(t *testing.T, sp *spool.Spool, env *spool.Envelope, content string) {
	t.Helper()
	m, err := sp.New()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(m, content)
	if err := m.Commit(env); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(sp.Dir, "queue", env.ID), sp.Now(), sp.Now())
}
