package session_test

import (
	"fmt"
	"strings"
	"testing"

	"smtp-bs/pkg/spool"
)

// A line that starts ".\r" and goes on without LF is refused (go-smtp
// dropped its CR before patch 3), and only that message: the next one, by DATA or by
// BDAT, is judged on its own (a review found the flag left set for a BDAT
// message after it).
func TestDotCRRefusesOnlyItsMessage(t *testing.T) {
	h := newHarness(t, spool.Ops{}, "local_domains = [\"mx.test.example\"]")
	d := h.dial(loopback)
	d.Cmd("EHLO c.test", 250)
	tx := func() {
		t.Helper()
		d.Cmd("MAIL FROM:<a@client.example>", 250)
		d.Cmd("RCPT TO:<b@mx.test.example>", 250)
	}
	tx()
	d.Cmd("DATA", 354)
	d.Send("Subject: dot-cr\r\n\r\nA\r\n.\rB\r\n.\r\n")
	if txt := d.Expect(554); !strings.Contains(txt, "5.6.0") {
		t.Errorf("dot-CR line: %q", txt)
	}
	tx()
	m := msg("by bdat")
	d.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(m), m))
	d.Expect(250)
	tx()
	d.Cmd("DATA", 354)
	d.Send(msg("by data") + ".\r\n")
	d.Expect(250)
	d.Cmd("QUIT", 221)
	if n := len(h.queued()); n != 2 {
		t.Errorf("queued %d messages, want 2", n)
	}
}
