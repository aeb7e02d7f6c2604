package delivery

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// scripted is an SMTP server on 127.0.0.1 that answers as a well-behaved
// one would, except where its hook says otherwise. It counts connections
// and the messages it took (250 after the final dot).
type scripted struct {
	addr string
	tls  *tls.Config // offer STARTTLS with this
	exts string      // the last EHLO line; "": "8BITMIME"
	// hook is consulted for every line (the greeting is line ""): it
	// returns true when it handled the line itself.
	hook func(s *scripted, h *hconn, line string) bool

	mu    sync.Mutex
	conns int
	msgs  int
	inTLS []bool // per message: it came over TLS
	data  []string
	helos []string
	stop  chan struct{}
}

type hconn struct {
	net.Conn
	r     *bufio.Reader
	n     int // this connection's number, from 1
	ehlos int
	isTLS bool
	msgs  int
}

func (h *hconn) say(s string) { h.Write([]byte(s + "\r\n")) }

func newScripted(t *testing.T, tlsCfg *tls.Config, hook func(s *scripted, h *hconn, line string) bool) *scripted {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{addr: l.Addr().String(), tls: tlsCfg, hook: hook, stop: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { close(s.stop); l.Close(); wg.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			n := s.conns
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-s.stop; c.Close() }()
				s.serve(&hconn{Conn: c, r: bufio.NewReader(c), n: n})
			}()
		}
	}()
	return s
}

// stall holds the connection open and silent until the test ends.
func (s *scripted) stall(h *hconn) { <-s.stop }

func (s *scripted) counts() (conns, msgs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.msgs
}

func (s *scripted) serve(h *hconn) {
	if s.hook != nil && s.hook(s, h, "") {
		return
	}
	h.say("220 scripted ESMTP")
	for {
		line, err := h.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if s.hook != nil && s.hook(s, h, line) {
			if h.Conn == nil {
				return
			}
			continue
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			h.ehlos++
			s.mu.Lock()
			s.helos = append(s.helos, line)
			s.mu.Unlock()
			ext := "250-scripted\r\n250-PIPELINING\r\n"
			if s.tls != nil && !h.isTLS {
				ext += "250-STARTTLS\r\n"
			}
			last := s.exts
			if last == "" {
				last = "8BITMIME"
			}
			h.Write([]byte(ext + "250 " + last + "\r\n"))
		case "STARTTLS":
			h.say("220 go ahead")
			tc := tls.Server(h.Conn, s.tls)
			if tc.Handshake() != nil {
				return
			}
			h.Conn, h.r, h.isTLS, h.ehlos = tc, bufio.NewReader(tc), true, 0
		case "MAIL", "RCPT", "NOOP", "RSET":
			h.say("250 ok")
		case "DATA":
			h.say("354 go on")
			body, ok := readBody(h)
			if !ok {
				return
			}
			s.mu.Lock()
			s.data = append(s.data, body)
			s.msgs++
			s.inTLS = append(s.inTLS, h.isTLS)
			s.mu.Unlock()
			h.msgs++
			h.say("250 queued")
		case "QUIT":
			h.say("221 bye")
			return
		default:
			h.say("502 no")
		}
	}
}

func readBody(h *hconn) (string, bool) {
	var b strings.Builder
	for {
		l, err := h.r.ReadString('\n')
		if err != nil {
			return "", false
		}
		if l == ".\r\n" {
			return b.String(), true
		}
		b.WriteString(l)
	}
}

// at is a hook that does then at the command verb and ends the connection.
func at(verb string, then func(s *scripted, h *hconn)) func(s *scripted, h *hconn, line string) bool {
	return func(s *scripted, h *hconn, line string) bool {
		if line == "" || !strings.HasPrefix(strings.ToUpper(line), verb) {
			return false
		}
		then(s, h)
		h.Conn.Close()
		h.Conn = nil
		return true
	}
}

// notTLS accepts STARTTLS and answers the handshake with plain text.
func notTLS(s *scripted, h *hconn) {
	h.say("220 go ahead")
	h.Write([]byte("this is not TLS\r\n"))
}

// hostileTimeout is the command and data timeout of these tests; a pass
// against a server that stalls must end within a few of them, where
// go-smtp's defaults would wait 5 minutes.
const hostileTimeout = time.Second

func hostileTransport(addr, mode string, log *maillog.Logger) *Transport {
	return New(Options{Hostname: "me.example", Smarthosts: []string{"[" + strings.Replace(addr, ":", "]:", 1)}, SmarthostTLS: mode,
		ConnectTimeout: hostileTimeout, CommandTimeout: hostileTimeout, DataTimeout: hostileTimeout, Log: log})
}

// TestHostileServers: every stage of a session is bounded by the
// configured timeouts and says which stage ran out, nothing that could be
// delivered is bounced, and every recipient gets an outcome.
func TestHostileServers(t *testing.T) {
	cert, _, _ := testenv.NewCA(t, t.TempDir()).Leaf(t, "127.0.0.1")
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	stallAt := func(verb string) func(s *scripted, h *hconn, line string) bool {
		return at(verb, func(s *scripted, h *hconn) { s.stall(h) })
	}
	afterDot := func(then func(s *scripted, h *hconn)) func(s *scripted, h *hconn, line string) bool {
		return func(s *scripted, h *hconn, line string) bool {
			if strings.ToUpper(line) != "DATA" {
				return false
			}
			h.say("354 go on")
			readBody(h)
			then(s, h)
			h.Conn = nil
			return true
		}
	}
	cases := []struct {
		name   string
		mode   string
		tls    bool
		hook   func(s *scripted, h *hconn, line string) bool
		want   spool.Status
		inText string
		msgs   int // messages the server took
	}{
		{"never greets", "opportunistic", false, func(s *scripted, h *hconn, line string) bool {
			s.stall(h)
			return true
		}, spool.Deferred, "no greeting within 1s", 0},
		{"stalls at EHLO", "opportunistic", false, stallAt("EHLO"), spool.Deferred, "no reply to EHLO within 1s", 0},
		{"stalls at STARTTLS", "opportunistic", true, stallAt("STARTTLS"), spool.Deferred, "no reply to STARTTLS within 1s", 0},
		{"stalls at MAIL", "opportunistic", false, stallAt("MAIL"), spool.Deferred, "no reply to MAIL within 1s", 0},
		{"stalls at RCPT", "opportunistic", false, stallAt("RCPT"), spool.Deferred, "no reply to RCPT within 1s", 0},
		{"stalls at DATA", "opportunistic", false, stallAt("DATA"), spool.Deferred, "no reply to DATA within 1s", 0},
		{"stalls after the final dot", "opportunistic", false, afterDot(func(s *scripted, h *hconn) { s.stall(h) }),
			spool.Deferred, "no reply after the final dot within 1s", 0},
		{"drops after the final dot", "opportunistic", false, afterDot(func(s *scripted, h *hconn) {}),
			spool.Deferred, "end of DATA", 0},
		{"421 mid-transaction", "opportunistic", false, at("RCPT", func(s *scripted, h *hconn) {
			h.say("421 4.3.2 shutting down")
		}), spool.Deferred, "421", 0},
		{"TLS handshake fails, required", "required", true, at("STARTTLS", notTLS), spool.Deferred, "TLS is required but failed", 0},
		{"TLS handshake stalls, required", "required", true, at("STARTTLS", func(s *scripted, h *hconn) {
			h.say("220 go ahead")
			s.stall(h)
		}), spool.Deferred, "TLS handshake not done within 1s", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg *tls.Config
			if c.tls {
				cfg = tlsCfg
			}
			s := newScripted(t, cfg, c.hook)
			tr := hostileTransport(s.addr, c.mode, nil)
			start := time.Now()
			res := deliver(t, tr, "a@example.net", "b@example.net")
			took := time.Since(start)
			tr.CloseIdle()
			if len(res) != 2 {
				t.Fatalf("%d results for 2 recipients: %+v", len(res), res)
			}
			_, msgs := s.counts()
			// One line per cell for the interop matrix (.ci/run prints them).
			fmt.Printf("interop: %-20s %-16s %-48s %s, delivered %d, lost 0 in %.2fs (timeouts %v)\n",
				"hostile (scripted)", "-", c.name, res[0].Status, msgs, took.Seconds(), hostileTimeout)
			for _, r := range res {
				if r.Status != c.want || !strings.Contains(r.Reply, c.inText) {
					t.Errorf("got %v %q, want %v with %q", r.Status, r.Reply, c.want, c.inText)
				}
			}
			// One stage's timeout at most (the pass may try the host twice:
			// a fresh connection after a reused one): far below go-smtp's 5m.
			if took > 4*hostileTimeout+2*time.Second {
				t.Errorf("the attempt took %v with every timeout at %v", took, hostileTimeout)
			}
			if _, msgs := s.counts(); msgs != c.msgs {
				t.Errorf("server took %d messages, want %d", msgs, c.msgs)
			}
		})
	}
}

// Opportunistic TLS against a server that offers STARTTLS but whose
// handshake fails: the mail goes in clear on a new connection, and that
// is logged as a downgrade and said in the recorded reply.
func TestOpportunisticDowngradeIsLogged(t *testing.T) {
	cert, _, _ := testenv.NewCA(t, t.TempDir()).Leaf(t, "127.0.0.1")
	s := newScripted(t, &tls.Config{Certificates: []tls.Certificate{cert}}, at("STARTTLS", notTLS))
	var logBuf bytes.Buffer
	tr := hostileTransport(s.addr, "opportunistic", maillog.New("qrun", &logBuf))
	r := deliver(t, tr, "a@example.net")[0]
	tr.CloseIdle()
	if r.Status != spool.Sent || !strings.Contains(r.Reply, "in clear: STARTTLS failed") {
		t.Fatalf("got %v %q", r.Status, r.Reply)
	}
	if !strings.Contains(logBuf.String(), "tls-downgrade host=127.0.0.1") {
		t.Errorf("no tls-downgrade in the log: %q", logBuf.String())
	}
	if conns, msgs := s.counts(); conns != 2 || msgs != 1 {
		t.Errorf("conns %d msgs %d, want 2 1", conns, msgs)
	}
}

// A 4xx is a deferral, and the next attempt delivers once.
func TestTemporaryThenDelivered(t *testing.T) {
	rcpts := 0
	s := newScripted(t, nil, func(s *scripted, h *hconn, line string) bool {
		if strings.HasPrefix(strings.ToUpper(line), "RCPT") {
			rcpts++
		}
		if rcpts == 1 && strings.HasPrefix(strings.ToUpper(line), "RCPT") {
			h.say("451 4.7.1 greylisted, try again later")
			return true
		}
		return false
	})
	tr := hostileTransport(s.addr, "opportunistic", nil)
	if r := deliver(t, tr, "a@example.net")[0]; r.Status != spool.Deferred || !strings.Contains(r.Reply, "451 4.7.1") {
		t.Fatalf("first attempt: %v %q", r.Status, r.Reply)
	}
	tr.CloseIdle()
	tr = hostileTransport(s.addr, "opportunistic", nil)
	if r := deliver(t, tr, "a@example.net")[0]; r.Status != spool.Sent {
		t.Fatalf("second attempt: %v %q", r.Status, r.Reply)
	}
	tr.CloseIdle()
	if _, msgs := s.counts(); msgs != 1 {
		t.Errorf("server took %d messages, want 1", msgs)
	}
}

// Every EHLO carries our hostname, the one before STARTTLS too: a server
// that refuses "localhost" as Postfix's reject_non_fqdn_helo_hostname does
// gets the mail over TLS, under required and under opportunistic.
func TestEHLONameBeforeSTARTTLS(t *testing.T) {
	cert, _, _ := testenv.NewCA(t, t.TempDir()).Leaf(t, "127.0.0.1")
	for _, mode := range []string{"required", "opportunistic"} {
		s := newScripted(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(s *scripted, h *hconn, line string) bool {
			if f := strings.Fields(line); len(f) == 2 && strings.EqualFold(f[0], "EHLO") && !strings.Contains(f[1], ".") {
				h.say("504 5.5.2 <" + f[1] + ">: Helo command rejected: need fully-qualified hostname")
				return true
			}
			return false
		})
		tr := hostileTransport(s.addr, mode, nil)
		r := deliver(t, tr, "a@example.net")[0]
		tr.CloseIdle()
		if r.Status != spool.Sent {
			t.Fatalf("%s: %v %q", mode, r.Status, r.Reply)
		}
		s.mu.Lock()
		helos, inTLS := s.helos, s.inTLS
		s.mu.Unlock()
		if len(inTLS) != 1 || !inTLS[0] {
			t.Errorf("%s: the message did not go over TLS (%v)", mode, inTLS)
		}
		for _, h := range helos {
			if h != "EHLO me.example" {
				t.Errorf("%s: the server heard %q", mode, h)
			}
		}
	}
}

// A server that refuses a second EHLO (Python's smtpd: 503 Duplicate
// HELO/EHLO) gets 1,000 messages over reused connections: every one is
// delivered, none bounced, and reuse still works.
func TestSecondEHLORefused(t *testing.T) {
	s := newScripted(t, nil, func(s *scripted, h *hconn, line string) bool {
		if f := strings.Fields(strings.ToUpper(line)); len(f) > 0 && (f[0] == "EHLO" || f[0] == "HELO") && h.ehlos > 0 {
			h.say("503 Duplicate HELO/EHLO")
			return true
		}
		if strings.HasPrefix(strings.ToUpper(line), "MAIL") && h.ehlos == 0 {
			h.say("503 Error: send HELO first")
			return true
		}
		return false
	})
	tr := hostileTransport(s.addr, "opportunistic", nil)
	const n = 1000
	sent := 0
	for i := 0; i < n; i++ {
		for _, r := range deliver(t, tr, "a@example.net") {
			if r.Status != spool.Sent {
				t.Fatalf("message %d: %v %q", i, r.Status, r.Reply)
			}
			sent++
		}
	}
	tr.CloseIdle()
	conns, msgs := s.counts()
	t.Logf("%d messages delivered over %d connections", msgs, conns)
	if sent != n || msgs != n {
		t.Errorf("sent %d, server took %d, want %d", sent, msgs, n)
	}
	if conns > n/100 {
		t.Errorf("%d connections for %d messages: reuse did not work", conns, n)
	}
}

// On a reused connection, a refusal caused by our own command sequence is
// tried again on a fresh connection, never bounced.
func TestSequenceErrorOnReusedConnectionIsRetriedFresh(t *testing.T) {
	s := newScripted(t, nil, func(s *scripted, h *hconn, line string) bool {
		if h.msgs > 0 && strings.HasPrefix(strings.ToUpper(line), "MAIL") {
			h.say("503 5.5.1 Error: nested MAIL command")
			return true
		}
		return false
	})
	tr := hostileTransport(s.addr, "none", nil)
	for i := 0; i < 3; i++ {
		if r := deliver(t, tr, "a@example.net")[0]; r.Status != spool.Sent {
			t.Fatalf("message %d: %v %q", i, r.Status, r.Reply)
		}
	}
	tr.CloseIdle()
	if conns, msgs := s.counts(); conns != 3 || msgs != 3 {
		t.Errorf("conns %d msgs %d, want 3 3", conns, msgs)
	}
	// On a fresh connection a 503 is still no verdict on the message.
	s2 := newScripted(t, nil, func(s *scripted, h *hconn, line string) bool {
		if strings.HasPrefix(strings.ToUpper(line), "RCPT") {
			h.say("503 5.5.1 Error: need MAIL command")
			return true
		}
		return false
	})
	tr = hostileTransport(s2.addr, "none", nil)
	if r := deliver(t, tr, "a@example.net")[0]; r.Status != spool.Deferred {
		t.Errorf("503 on a fresh connection: %v %q", r.Status, r.Reply)
	}
	tr.CloseIdle()
}
