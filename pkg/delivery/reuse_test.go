package delivery

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/pkg/spool"
)

// countingServer is a minimal SMTP server that counts connections,
// messages and RSETs; with dropAfter it hangs up after each message, as
// a server whose idle timeout ran out would.
type countingServer struct {
	addr      string
	dropAfter bool
	mu        sync.Mutex
	conns     int
	msgs      int
	rsets     int
	noops     int
	quits     int
}

func newCountingServer(t *testing.T, dropAfter bool) *countingServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &countingServer{addr: l.Addr().String(), dropAfter: dropAfter}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.add(&s.conns)
			go s.serve(c)
		}
	}()
	return s
}

func (s *countingServer) add(n *int) {
	s.mu.Lock()
	*n++
	s.mu.Unlock()
}

func (s *countingServer) counts() (conns, msgs, rsets, quits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.msgs, s.rsets + s.noops, s.quits
}

func (s *countingServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(l string) { c.Write([]byte(l + "\r\n")) }
	say("220 counting")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO", "HELO", "MAIL", "RCPT":
			say("250 ok")
		case "NOOP":
			s.add(&s.noops)
			say("250 ok")
		case "RSET":
			s.add(&s.rsets)
			say("250 ok")
		case "DATA":
			say("354 go on")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			s.add(&s.msgs)
			say("250 queued")
			if s.dropAfter {
				return
			}
		case "QUIT":
			s.add(&s.quits)
			say("221 bye")
			return
		default:
			say("502 no")
		}
	}
}

func TestConnectionReuse(t *testing.T) {
	s := newCountingServer(t, false)
	tr := New(Options{Hostname: "me.example", Smarthosts: []string{s.addr}, SmarthostTLS: "none", ConnectTimeout: 2 * time.Second})
	for i := 0; i < 5; i++ {
		for _, r := range deliver(t, tr, "a@example.net") {
			if r.Status != spool.Sent {
				t.Fatalf("message %d: %+v", i, r)
			}
		}
	}
	tr.CloseIdle()
	time.Sleep(50 * time.Millisecond)
	conns, msgs, checks, quits := s.counts()
	if conns != 1 || msgs != 5 || checks != 4 || quits != 1 {
		t.Fatalf("conns %d msgs %d checks (NOOP or RSET) %d quits %d; want 1 5 4 1", conns, msgs, checks, quits)
	}
}

// A connection that died while idle costs a reconnect, never a deferral.
func TestReuseOfADeadConnectionReconnects(t *testing.T) {
	s := newCountingServer(t, true)
	tr := New(Options{Hostname: "me.example", Smarthosts: []string{s.addr}, SmarthostTLS: "none", ConnectTimeout: 2 * time.Second})
	for i := 0; i < 3; i++ {
		for _, r := range deliver(t, tr, "a@example.net") {
			if r.Status != spool.Sent {
				t.Fatalf("message %d: %+v", i, r)
			}
		}
	}
	tr.CloseIdle()
	if conns, msgs, _, _ := s.counts(); conns != 3 || msgs != 3 {
		t.Fatalf("conns %d msgs %d; want 3 3", conns, msgs)
	}
}

// An idle connection nobody takes up is closed with QUIT on its own.
func TestIdleConnectionIsClosed(t *testing.T) {
	s := newCountingServer(t, false)
	tr := New(Options{Hostname: "me.example", Smarthosts: []string{s.addr}, SmarthostTLS: "none", ConnectTimeout: 2 * time.Second})
	deliver(t, tr, "a@example.net")
	time.Sleep(reuseIdle + 500*time.Millisecond)
	if _, _, _, quits := s.counts(); quits != 1 {
		t.Fatalf("quits %d, want 1", quits)
	}
}
