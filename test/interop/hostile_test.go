package interop

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// TestSilentServerPass: the whole qrun pass against a next hop that takes
// the connection and never greets ends within the configured timeouts
// (before, go-smtp's 5-minute greeting wait held the pass, and the spool
// lock, for 5m20s), every message is deferred and the log names the stage.
func TestSilentServerPass(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-stop; c.Close() }() // silent until the test ends
		}
	}()
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\nconnect_timeout = \"2s\"\ncommand_timeout = \"2s\"\ndata_timeout = \"2s\"\n", hop(l.Addr().String()))
	e.WriteConfig()
	o := pass(t, e, msgs(10, "silent", "r@remote.example"))
	report(t, "hostile (real qrun)", "-", "accepts TCP, never greets: 10 messages", o, 0, 0, 10, 20*time.Second)
	if !strings.Contains(o.log, "no greeting within 2s") {
		t.Errorf("the log does not name the stage:\n%s", o.log)
	}
}
