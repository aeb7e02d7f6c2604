// Package session is smtp-bs's SMTP policy on top of go-smtp.
//
// One process serves one connection: Serve hands go-smtp a listener that
// yields that connection once. The policy: recipients in a local domain
// are accepted from anyone; any other recipient only from a client in
// relay_networks or a local submission. Address tricks that have made open
// relays (%-hack, !-paths, source routes, quoted @, trailing dots, address
// literals) are refused with 5xx. A message is accepted (250, with its
// queue ID) only after the spool has committed it durably; a local failure
// is a 451/452, never a 5xx that would make the client bounce the mail.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/mailbox"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// Client is what the launcher knows of the peer.
type Client struct {
	Addr  netip.Addr // invalid for local submissions
	Local bool       // a pipe or unix socket: a program on this host
	Relay bool       // extra relay grant (tcpwrap's setenv RELAYCLIENT)
}

func (c Client) String() string {
	if c.Local || !c.Addr.IsValid() {
		return "local"
	}
	return c.Addr.String()
}

// Server holds what every session of this process shares.
type Server struct {
	Config *config.Config
	Spool  *spool.Spool
	Log    *maillog.Logger
	Now    func() time.Time
}

// Serve runs one SMTP session on conn and returns when it is over.
func (s *Server) Serve(ctx context.Context, conn net.Conn, client Client) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	cfg := s.Config.SMTP
	start := now()
	g := newGuardConn(conn, s.Config.Hostname, start.Add(cfg.SessionTimeout.Duration))
	b := &backend{srv: s, client: client, guard: g, now: now}
	b.relay = client.Local || client.Relay || (client.Addr.IsValid() && cfg.RelayAllowed(client.Addr))

	s.Log.Event(maillog.Info, "connect", "peer", client, "relay", b.relay)
	if !client.Local {
		wait := cfg.PregreetWait.Duration
		if b.relay {
			wait = 0
		}
		if earlyTalk(conn, wait) {
			s.Log.Event(maillog.Warning, "reject", "stage", "greeting", "peer", client, "code", errEarlyTalker.Code,
				"reason", "client talked before the greeting")
			refuseEarly(conn, s.Config.Hostname)
			s.Log.Event(maillog.Info, "disconnect", "peer", client, "messages", 0, "errors", 1,
				"seconds", fmt.Sprintf("%.3f", now().Sub(start).Seconds()))
			return nil
		}
	}

	srv := smtp.NewServer(b)
	srv.Domain = s.Config.Hostname
	srv.ReadTimeout = cfg.CommandTimeout.Duration
	srv.WriteTimeout = cfg.CommandTimeout.Duration
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	srv.MaxLineLength = 0 // the filter bounds command lines; content is streamed
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = s.Log

	l := &oneConnListener{conn: g, done: g.closed}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-g.closed:
	case <-ctx.Done():
		g.Close()
	}
	srv.Close()
	<-errc
	b.mu.Lock()
	s.Log.Event(maillog.Info, "disconnect", "peer", client, "messages", b.messages, "errors", b.errors,
		"seconds", fmt.Sprintf("%.3f", now().Sub(start).Seconds()))
	b.mu.Unlock()
	return nil
}

// oneConnListener yields one connection, then blocks until it is closed.
type oneConnListener struct {
	conn net.Conn
	done <-chan struct{}
	mu   sync.Mutex
	used bool
	stop chan struct{}
	once sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.stop == nil {
		l.stop = make(chan struct{})
	}
	used := l.used
	l.used = true
	l.mu.Unlock()
	if !used {
		return l.conn, nil
	}
	select {
	case <-l.done:
	case <-l.stop:
	}
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	if l.stop == nil {
		l.stop = make(chan struct{})
	}
	l.mu.Unlock()
	l.once.Do(func() { close(l.stop) })
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }

// backend is go-smtp's Backend; it makes one session (go-smtp calls
// NewSession at the first HELO/EHLO and keeps it for the connection).
type backend struct {
	srv    *Server
	client Client
	relay  bool
	guard  *guardConn
	now    func() time.Time

	mu       sync.Mutex // BDAT runs Data in its own goroutine
	conn     *smtp.Conn
	messages int
	errors   int
	from     *string
	mailOpts *smtp.MailOptions
	rcpts    []string
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.conn = c
	b.mu.Unlock()
	return b, nil
}

// Replies. Policy refusals are values; anything unexpected becomes 451.
func reply(code int, ec smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}
}

var (
	errRelayDenied   = reply(554, smtp.EnhancedCode{5, 7, 1}, "Relay access denied")
	errTooManyErrors = reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many errors, closing connection")
	errTooManyMsgs   = reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many messages in one session, closing connection")
	errNoSpace       = reply(452, smtp.EnhancedCode{4, 3, 1}, "Insufficient system storage, try again later")
	errLocal         = reply(451, smtp.EnhancedCode{4, 3, 0}, "Local error in processing, try again later")
	errBareEOL       = reply(554, smtp.EnhancedCode{5, 6, 0}, "Message contains bare CR or LF line endings (not accepted, see RFC 5321 2.3.8)")
	errNUL           = reply(554, smtp.EnhancedCode{5, 6, 0}, "Message contains NUL characters")
	errLoop          = reply(554, smtp.EnhancedCode{5, 4, 6}, "Too many hops (Received headers), mail loop?")
	errUnknownUser   = reply(550, smtp.EnhancedCode{5, 1, 1}, "User unknown in local recipient table")
	errSourceRoute   = reply(553, smtp.EnhancedCode{5, 1, 0}, "Source routes are not accepted")
	errNeedUTF8      = reply(553, smtp.EnhancedCode{5, 6, 7}, "Non-ASCII address requires SMTPUTF8")
)

// refuse logs a rejection, counts it and ends the session once the client
// has made too many mistakes. Call with b.mu held.
func (b *backend) refuse(stage string, err *smtp.SMTPError, kv ...any) error {
	b.errors++
	fields := append([]any{"stage", stage, "peer", b.client, "code", err.Code, "reason", err.Message}, kv...)
	b.srv.Log.Event(maillog.Warning, "reject", fields...)
	if b.errors >= b.srv.Config.SMTP.MaxErrors {
		b.guard.endAfterReply()
		return errTooManyErrors
	}
	return err
}

func (b *backend) Mail(from string, opts *smtp.MailOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg := b.srv.Config
	if b.messages >= cfg.SMTP.MaxMessages {
		b.guard.endAfterReply()
		return errTooManyMsgs
	}
	if from != "" {
		a, err := address.Check(from)
		if err != nil {
			return b.refuse("mail", reply(553, smtp.EnhancedCode{5, 1, 7}, "Bad sender address: "+reasonOf(err)), "from", from)
		}
		if !opts.UTF8 && !address.IsASCII(from) {
			return b.refuse("mail", errNeedUTF8, "from", from)
		}
		from = a.String()
	}
	if err := b.srv.Spool.CheckReserve(cfg.Spool.MinFreeBytes, opts.Size); err != nil {
		if spool.IsNoSpace(err) {
			return b.refuse("mail", errNoSpace, "detail", err)
		}
		b.srv.Log.Event(maillog.Error, "error", "stage", "mail", "err", err)
		return errLocal
	}
	b.from, b.mailOpts, b.rcpts = &from, opts, nil
	return nil
}

func reasonOf(err error) string {
	var ae *address.Error
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return "invalid"
}

func (b *backend) Rcpt(to string, opts *smtp.RcptOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg := b.srv.Config
	if to == sourceRouteMarker {
		return b.refuse("rcpt", errSourceRoute, "from", *b.from)
	}
	a, err := address.Check(to)
	if err != nil {
		return b.refuse("rcpt", reply(553, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address: "+reasonOf(err)), "from", *b.from, "rcpt", to)
	}
	if !b.mailOpts.UTF8 && !address.IsASCII(to) {
		return b.refuse("rcpt", errNeedUTF8, "from", *b.from, "rcpt", to)
	}
	local := cfg.SMTP.IsLocalDomain(a.Domain)
	postmaster := strings.EqualFold(a.Local, "postmaster") && (local || strings.EqualFold(a.Domain, cfg.Hostname))
	if !local && !postmaster && !b.relay {
		return b.refuse("rcpt", errRelayDenied, "from", *b.from, "rcpt", a)
	}
	if cfg.Local.IsLocalDelivery(a.Domain) && !postmaster {
		if err := mailbox.Known(cfg, a.Local); errors.Is(err, mailbox.ErrUnknownRecipient) {
			return b.refuse("rcpt", errUnknownUser, "from", *b.from, "rcpt", a)
		} else if err != nil {
			b.srv.Log.Event(maillog.Error, "error", "stage", "rcpt", "rcpt", a, "err", err)
			return errLocal
		}
	}
	for _, r := range b.rcpts {
		if r == a.String() {
			return nil // a duplicate gets one copy
		}
	}
	b.rcpts = append(b.rcpts, a.String())
	return nil
}

func (b *backend) Reset() {
	b.mu.Lock()
	b.from, b.mailOpts, b.rcpts = nil, nil, nil
	b.mu.Unlock()
}

func (b *backend) Logout() error { return nil }

// Data streams the message into the spool, checking it on the way, and
// answers 250 with the queue ID only after the commit.
func (b *backend) Data(r io.Reader) error {
	b.mu.Lock()
	if b.from == nil || len(b.rcpts) == 0 {
		b.mu.Unlock()
		return reply(503, smtp.EnhancedCode{5, 5, 1}, "Need MAIL and RCPT first")
	}
	from, opts, rcpts := *b.from, b.mailOpts, append([]string(nil), b.rcpts...)
	b.mu.Unlock()

	cfg := b.srv.Config
	b.guard.extendRead(cfg.SMTP.DataTimeout.Duration)
	defer b.guard.extendRead(cfg.SMTP.CommandTimeout.Duration)

	m, err := b.srv.Spool.New()
	if err != nil {
		return b.localError("data", err)
	}
	proto := b.protocol(opts)
	now := b.now()
	helo := b.conn.Hostname()
	if _, err := io.WriteString(m, receivedHeader(helo, b.client, cfg.Hostname, proto, m.ID(), rcpts, now)); err != nil {
		m.Abort()
		return b.localError("data", err)
	}
	chk := newBodyCheck(m, cfg.SMTP.MaxReceived)
	if _, err := io.Copy(chk, r); err != nil {
		m.Abort()
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.refuse("data", se, "from", from, "nrcpts", len(rcpts))
		}
		if errors.Is(err, errCheckWrite) {
			return b.localError("data", err)
		}
		// The client went away or timed out mid-message.
		b.srv.Log.Event(maillog.Warning, "reject", "stage", "data", "peer", b.client, "reason", "connection lost during DATA", "err", err)
		return reply(451, smtp.EnhancedCode{4, 4, 2}, "Connection problem during DATA")
	}
	if err := chk.finish(); err != nil {
		m.Abort()
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.refuse("data", err, "from", from, "nrcpts", len(rcpts))
	}
	body := string(opts.Body)
	if body == "" {
		body = "7BIT"
	}
	env := &spool.Envelope{
		Received: now, From: from, Rcpts: rcpts, Peer: b.client.String(),
		Helo: sanitizeHelo(helo), Protocol: proto, Body: body, UTF8: opts.UTF8,
	}
	if err := m.Commit(env); err != nil {
		return b.localError("data", err)
	}
	b.mu.Lock()
	b.messages++
	b.mu.Unlock()
	b.srv.Log.Event(maillog.Info, "queued", "id", env.ID, "from", "<"+from+">", "size", env.Size,
		"nrcpts", len(rcpts), "peer", b.client, "helo", env.Helo, "proto", proto)
	return reply(250, smtp.EnhancedCode{2, 0, 0}, "OK: queued as "+env.ID)
}

// localError maps a failure of ours to 451/452; the detail goes to the log,
// not to the client.
func (b *backend) localError(stage string, err error) error {
	b.srv.Log.Event(maillog.Error, "error", "stage", stage, "peer", b.client, "err", err)
	if spool.IsNoSpace(err) {
		return errNoSpace
	}
	return errLocal
}

func (b *backend) protocol(opts *smtp.MailOptions) string {
	f := b.guard.filter()
	p := "SMTP"
	if f.ehlo {
		p = "ESMTP"
		if opts.UTF8 {
			p = "UTF8SMTP"
		}
	}
	if _, ok := b.conn.TLSConnectionState(); ok {
		p += "S"
	}
	return p
}
