package milter

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
)

// counting is a go-milter backend that counts its calls and answers as
// told.
type counting struct {
	gomilter.NoOpMilter
	mu      *sync.Mutex
	calls   map[string]int
	connect gomilter.Response
	mail    gomilter.Response
}

func (c *counting) count(k string) {
	c.mu.Lock()
	c.calls[k]++
	c.mu.Unlock()
}

func (c *counting) Connect(string, string, uint16, net.IP, *gomilter.Modifier) (gomilter.Response, error) {
	c.count("connect")
	return c.connect, nil
}

func (c *counting) MailFrom(string, *gomilter.Modifier) (gomilter.Response, error) {
	c.count("mail")
	return c.mail, nil
}

func (c *counting) RcptTo(string, *gomilter.Modifier) (gomilter.Response, error) {
	c.count("rcpt")
	return gomilter.RespContinue, nil
}

func (c *counting) Body(*gomilter.Modifier) (gomilter.Response, error) {
	c.count("eom")
	return gomilter.RespAccept, nil
}

func (c *counting) Abort(*gomilter.Modifier) error {
	c.count("abort")
	return nil
}

func serve(t *testing.T, connect, mail gomilter.Response) (config.Milter, func() map[string]int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter {
		return &counting{mu: &mu, calls: calls, connect: connect, mail: mail}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cfg := config.Milter{Name: "t", Socket: "inet:" + ln.Addr().String(), DefaultAction: "tempfail",
		ConnectTimeout: config.Duration{Duration: 5 * time.Second}, Timeout: config.Duration{Duration: 5 * time.Second}}
	return cfg, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range calls {
			out[k] = v
		}
		return out
	}
}

var peer = Peer{Addr: netip.MustParseAddr("192.0.2.1"), Port: 4242, Hostname: "mx.example", Daemon: "smtp-bs"}

const msg = ours + "Subject: x\r\n\r\nbody\r\n"

func TestSessionDiscardAtConnect(t *testing.T) {
	cfg, _ := serve(t, gomilter.RespDiscard, gomilter.RespContinue)
	s := Open([]config.Milter{cfg}, peer, maillog.Discard())
	defer s.Close()
	if v := s.Mail(MailInfo{Helo: "c.example", From: "a@c.example"}); v.Kind != Discard {
		t.Fatalf("MAIL after a connect-stage discard: %+v", v)
	}
	if v := s.Rcpt("b@r.example", nil); v.Kind != Continue {
		t.Fatalf("RCPT: %+v", v)
	}
	res, err := s.Content(strings.NewReader(msg), int64(len(msg)), "ID", Envelope{From: "a@c.example", Rcpts: []string{"b@r.example"}})
	if err != nil || res.Verdict.Kind != Discard {
		t.Fatalf("content: %v %+v", err, res)
	}
}

func TestSessionAcceptAndAbort(t *testing.T) {
	cfg, calls := serve(t, gomilter.RespContinue, gomilter.RespAccept)
	s := Open([]config.Milter{cfg}, peer, maillog.Discard())
	defer s.Close()
	// Accepted at MAIL: the milter hears nothing more of this transaction.
	s.Mail(MailInfo{Helo: "c.example", From: "a@c.example"})
	s.Rcpt("b@r.example", nil)
	res, err := s.Content(strings.NewReader(msg), int64(len(msg)), "ID", Envelope{From: "a@c.example", Rcpts: []string{"b@r.example"}})
	if err != nil || res.Verdict.Kind != Continue || res.Changed() {
		t.Fatalf("content: %v %+v", err, res)
	}
	// The next transaction asks it again; RSET aborts it.
	s.Mail(MailInfo{Helo: "c.example", From: "a@c.example"})
	s.Abort()
	time.Sleep(50 * time.Millisecond) // Abort has no reply to wait for
	if c := calls(); c["connect"] != 1 || c["mail"] != 2 || c["rcpt"] != 0 || c["eom"] != 0 {
		t.Errorf("calls %v", c)
	}
}

func TestSessionDownTempfails(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Milter{Name: "gone", Socket: "inet:" + addr, DefaultAction: "tempfail",
		ConnectTimeout: config.Duration{Duration: time.Second}, Timeout: config.Duration{Duration: time.Second}}
	s := Open([]config.Milter{cfg}, peer, maillog.Discard())
	if v := s.Mail(MailInfo{From: "a@c.example"}); v.Kind != TempFail || !v.Down || v.Milter != "gone" {
		t.Errorf("MAIL: %+v", v)
	}
	cfg.DefaultAction = "accept"
	s = Open([]config.Milter{cfg}, peer, maillog.Discard())
	if v := s.Mail(MailInfo{From: "a@c.example"}); v.Kind != Continue {
		t.Errorf("MAIL with accept: %+v", v)
	}
}
