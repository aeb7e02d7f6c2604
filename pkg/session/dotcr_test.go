package session_test

import (
	"fmt"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// dialMode serves one session reached in mode m and returns the client's
// side where a plaintext client stands after the greeting.
func (h *tlsHarness) dialMode(t *testing.T, m testenv.Mode) *testenv.Dialogue {
	t.Helper()
	switch m {
	case testenv.StartTLS:
		d := h.dial(loopback)
		d.Cmd("EHLO starttls.test", 250)
		td, _ := h.startTLS(d)
		return td
	case testenv.ImplicitTLS:
		return h.dialImplicit(t)
	}
	return h.dial(loopback)
}

// A line that starts ".\r" and goes on without LF is refused (go-smtp
// dropped its CR before patch 3, after STARTTLS unseen), and only that
// message: the next one, by DATA or by BDAT, is judged on its own (a
// review found the flag of the retired filter left set for a BDAT message
// after it). The same in every mode.
func TestDotCRRefusesOnlyItsMessage(t *testing.T) {
	for _, m := range testenv.Modes {
		t.Run(string(m), func(t *testing.T) {
			h := newTLSHarness(t, "")
			d := h.dialMode(t, m)
			d.Cmd("EHLO c.test", 250)
			tx := func() {
				t.Helper()
				d.Cmd("MAIL FROM:<a@client.example>", 250)
				d.Cmd("RCPT TO:<b@"+testHost+">", 250)
			}
			for _, dotCR := range []string{"A\r\n.\rB\r\n", "A\r\n.\r\r\nB\r\n", "A\r\n.\r"} {
				tx()
				d.Cmd("DATA", 354)
				d.Send("Subject: dot-cr\r\n\r\n" + dotCR + "\r\n.\r\n")
				if txt := d.Expect(554); !strings.Contains(txt, "5.6.0") {
					t.Errorf("%q: %q", dotCR, txt)
				}
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
		})
	}
}
