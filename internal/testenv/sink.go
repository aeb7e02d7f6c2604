package testenv

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Message is what the sink received in one transaction.
type Message struct {
	From  string
	Rcpts []string
	Data  []byte
}

// Sink is a go-smtp server on 127.0.0.1 that records what it is sent.
type Sink struct {
	Addr string
	// RcptReply decides each RCPT; nil accepts all.
	RcptReply func(rcpt string) error
	// DataReply decides the end of DATA; nil accepts.
	DataReply func(m *Message) error

	mu   sync.Mutex
	msgs []Message
	srv  *smtp.Server
}

// NewSink starts a sink that stops when the test ends.
func NewSink(t testing.TB) *Sink {
	t.Helper()
	s := &Sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "sink.test"
	srv.EnableSMTPUTF8 = true
	srv.MaxLineLength = 0
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr, s.srv = l.Addr().String(), srv
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// Messages returns a copy of what was received so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// SetReplies changes the sink's answers (safe while it runs).
func (s *Sink) SetReplies(rcpt func(string) error, data func(*Message) error) {
	s.mu.Lock()
	s.RcptReply, s.DataReply = rcpt, data
	s.mu.Unlock()
}

type sinkSession struct {
	s   *Sink
	msg Message
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.msg = Message{From: from}
	return nil
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	f := ss.s.RcptReply
	ss.s.mu.Unlock()
	if f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.msg.Rcpts = append(ss.msg.Rcpts, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.msg.Data = b
	ss.s.mu.Lock()
	f := ss.s.DataReply
	ss.s.mu.Unlock()
	if f != nil {
		if err := f(&ss.msg); err != nil {
			return err
		}
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, ss.msg)
	ss.s.mu.Unlock()
	return nil
}

func (ss *sinkSession) Reset()        { ss.msg = Message{} }
func (ss *sinkSession) Logout() error { return nil }

// Reply builds an SMTP error reply for RcptReply/DataReply.
func Reply(code int, e1, e2, e3 int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{e1, e2, e3}, Message: msg}
}
