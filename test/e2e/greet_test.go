package e2e

import (
	"os"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// smtp-bs greets before it opens the spool (README: Performance). When the
// spool then fails, the client, whose EHLO may already be on its way,
// reads a 421 in place of the reply, and the failure is logged. (smtp-bs
// drains the EHLO before it closes, so that no reset destroys the reply
// unread; on loopback that race is too narrow for this test to lose.)
func TestSpoolFailureAfterEarlyGreeting(t *testing.T) {
	e := testenv.New(t)
	addr := e.SocketActivate()
	if err := os.RemoveAll(e.SpoolDir); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		d := testenv.Dial(t, addr, 220)
		if reply := d.Cmd("EHLO c.test", 421); !strings.Contains(reply, "4.3.0") {
			t.Errorf("reply %q, want 421 4.3.0", reply)
		}
		d.Conn.Close()
	}
	if !strings.Contains(e.Log(), "stage=spool") {
		t.Errorf("the spool failure is not logged:\n%s", e.Log())
	}
}
