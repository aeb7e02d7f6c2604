package testenv

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/auth"
)

// Message is what the sink received in one transaction.
type Message struct {
	From     string
	Rcpts    []string
	Data     []byte
	TLS      bool   // the transaction ran over TLS
	AuthUser string // who authenticated, if anyone
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

	active    int
	MaxActive int // most sessions open at once (read under no race after the test)
	Sessions  int // sessions opened
}

// NewSink starts a sink on a free 127.0.0.1 port; it stops when the test ends.
func NewSink(t testing.TB) *Sink { return NewSinkWith(t, SinkOptions{}) }

// SinkOptions make a sink more like a real MX or smarthost.
type SinkOptions struct {
	Addr     string      // default 127.0.0.1:0
	TLS      *tls.Config // offer STARTTLS (or speak TLS at once with Implicit)
	Implicit bool
	Auth     map[string]string // user -> password: offer AUTH PLAIN/LOGIN
	// NoSMTPUTF8 makes the sink an older server that does not offer SMTPUTF8.
	NoSMTPUTF8 bool
	// RequireTLS offers REQUIRETLS (inside TLS).
	RequireTLS bool
}

// NewSinkWith starts a sink as o says.
func NewSinkWith(t testing.TB, o SinkOptions) *Sink {
	t.Helper()
	s := &Sink{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		s.mu.Lock()
		s.active++
		if s.active > s.MaxActive {
			s.MaxActive = s.active
		}
		s.Sessions++
		s.mu.Unlock()
		ss := &sinkSession{s: s, conn: c}
		if o.Auth != nil {
			return &authSession{sinkSession: ss, users: o.Auth}, nil
		}
		return ss, nil
	}))
	srv.Domain = "sink.test"
	srv.EnableSMTPUTF8 = !o.NoSMTPUTF8
	srv.EnableREQUIRETLS = o.RequireTLS
	srv.MaxLineLength = 0
	srv.TLSConfig = o.TLS
	if o.TLS != nil && o.Implicit {
		srv.TLSConfig = nil
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	if o.Implicit {
		l, err = tls.Listen("tcp", addr, o.TLS)
	} else {
		l, err = net.Listen("tcp", addr)
	}
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
	s        *Sink
	conn     *smtp.Conn
	msg      Message
	authUser string
}

type authSession struct {
	*sinkSession
	users map[string]string
}

func (a *authSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (a *authSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if want, ok := a.users[user]; !ok || want != pass {
			return smtp.ErrAuthFailed
		}
		a.authUser = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return auth.NewLoginServer(check), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
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
	if st, ok := ss.conn.TLSConnectionState(); ok && st.HandshakeComplete {
		ss.msg.TLS = true
	}
	ss.msg.AuthUser = ss.authUser
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

func (ss *sinkSession) Reset() { ss.msg = Message{} }
func (ss *sinkSession) Logout() error {
	ss.s.mu.Lock()
	ss.s.active--
	ss.s.mu.Unlock()
	return nil
}

// Reply builds an SMTP error reply for RcptReply/DataReply.
func Reply(code int, e1, e2, e3 int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{e1, e2, e3}, Message: msg}
}
