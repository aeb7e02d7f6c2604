package session

import (
	"net"
	"testing"
	"time"
)

// recordConn records each Write as the network would see it.
type recordConn struct {
	net.Conn
	writes [][]byte
	closed bool
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (r *recordConn) Close() error { r.closed = true; return nil }

// TestGuardCoalescesReplies: go-smtp flushes each line of a multi-line
// reply; the guard sends the reply in one write, ends it at its last line,
// lets anything else (a single line, a TLS record) through at once, and
// sends what it holds when the connection closes.
func TestGuardCoalescesReplies(t *testing.T) {
	rc := &recordConn{}
	g := newGuardConn(rc, time.Now().Add(time.Minute))
	for _, l := range []string{"250-mx.example Hello\r\n", "250-PIPELINING\r\n", "250 SMTPUTF8\r\n"} {
		if n, err := g.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", l, n, err)
		}
	}
	if len(rc.writes) != 1 || string(rc.writes[0]) != "250-mx.example Hello\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n" {
		t.Fatalf("writes %q, want the whole reply in one", rc.writes)
	}
	record := []byte{0x17, 0x03, 0x03, 0x00, 0x05, '2', '5', '0', '-', 'x', '\r', '\n'}
	g.Write(record)
	g.Write([]byte("354 Go ahead\r\n"))
	if len(rc.writes) != 3 || rc.writes[1][0] != 0x17 || string(rc.writes[2]) != "354 Go ahead\r\n" {
		t.Fatalf("writes %q", rc.writes)
	}
	g.Write([]byte("250-cut off\r\n"))
	if len(rc.writes) != 3 {
		t.Fatalf("a continuation line went out alone")
	}
	g.Close()
	if len(rc.writes) != 4 || string(rc.writes[3]) != "250-cut off\r\n" || !rc.closed {
		t.Fatalf("Close: writes %q, closed %v", rc.writes, rc.closed)
	}
}
