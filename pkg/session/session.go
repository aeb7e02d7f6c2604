// Package session is smtp-bs's SMTP policy on top of go-smtp.
//
// One process serves one connection: Greet may send the greeting early,
// and Serve runs the session on it with go-smtp. The policy: recipients in a local domain
// are accepted from anyone; any other recipient only from a client in
// relay_networks or a local submission. Address tricks that have made open
// relays (%-hack, !-paths, source routes, quoted @, trailing dots, address
// literals) are refused with 5xx. A message is accepted (250, with its
// queue ID) only after the spool has committed it durably; a local failure
// is a 451/452, never a 5xx that would make the client bounce the mail.
package session

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/auth"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/localuser"
	"smtp-bs/pkg/mailauth"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/milter"
	"smtp-bs/pkg/spool"
)

// Client is what the launcher knows of the peer.
type Client struct {
	Addr  netip.Addr // invalid for local submissions
	Local bool       // a pipe or unix socket: a program on this host
	Relay bool       // extra relay grant (tcpwrap's setenv RELAYCLIENT)
	Port  uint16     // the client's port, for milters
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
	// TLS, when set, is offered with STARTTLS, or spoken from the first
	// byte when Implicit (port 465).
	TLS      *tls.Config
	Implicit bool
	// Credentials, when set, enable AUTH PLAIN and LOGIN, over TLS only.
	Credentials *auth.Credentials
	// Milters, when set, are consulted at every stage (milter.go); nil
	// when none are configured, at no cost.
	Milters *milter.Session
	// Checks, when set, runs SPF, DKIM and DMARC (checks.go); nil when
	// [checks] asks for none of them.
	Checks *Checks

	insecureAuth bool // tests only: AUTH without TLS

	greeted bool      // Greet wrote the greeting
	start   time.Time // when Greet began
}

// Greet writes the greeting to a plaintext network client as soon as the
// process knows it will serve it, before it loads what only commands
// need (the TLS pair, the spool, milters, its sandbox): the client reads
// the 220 and composes its EHLO meanwhile, so that work leaves the time
// to greeting. It logs the connection and refuses an early talker first,
// as Serve would. false: the session is over (the client was refused).
// Serve then goes on from the client's first command.
func (s *Server) Greet(conn net.Conn, client Client) bool {
	if s.Implicit || client.Local {
		return true // nothing to greet early: Serve greets
	}
	s.start = s.now()()
	if !s.open(conn, client, s.start) {
		return false
	}
	conn.SetWriteDeadline(s.start.Add(s.Config.SMTP.CommandTimeout.Duration))
	_, err := fmt.Fprintf(conn, "220 %s ESMTP Service Ready\r\n", s.Config.Hostname)
	conn.SetWriteDeadline(time.Time{})
	s.greeted = err == nil
	return err == nil
}

func (s *Server) now() func() time.Time {
	if s.Now != nil {
		return s.Now
	}
	return time.Now
}

// open logs the connection and refuses a plaintext network client that
// talked before the greeting. false: the session is over.
func (s *Server) open(conn net.Conn, client Client, start time.Time) bool {
	relay := s.relayAllowed(client)
	s.Log.Event(maillog.Info, "connect", "peer", client, "relay", relay)
	if client.Local || s.Implicit {
		return true
	}
	wait := s.Config.SMTP.PregreetWait.Duration
	if relay {
		wait = 0
	}
	if earlyTalk(conn, wait) {
		s.Log.Event(maillog.Warning, "reject", "stage", "greeting", "peer", client, "code", errEarlyTalker.Code,
			"reason", "client talked before the greeting")
		refuseEarly(conn, s.Config.Hostname)
		s.Log.Event(maillog.Info, "disconnect", "peer", client, "messages", 0, "errors", 1,
			"seconds", fmt.Sprintf("%.3f", s.now()().Sub(start).Seconds()))
		return false
	}
	return true
}

func (s *Server) relayAllowed(client Client) bool {
	cfg := s.Config.SMTP
	return client.Local || client.Relay || (client.Addr.IsValid() && cfg.RelayAllowed(client.Addr))
}

// Serve runs one SMTP session on conn and returns when it is over.
func (s *Server) Serve(ctx context.Context, conn net.Conn, client Client) error {
	now := s.now()
	cfg := s.Config.SMTP
	start := now()
	if s.greeted {
		start = s.start
	}
	hardEnd := start.Add(cfg.SessionTimeout.Duration)
	b := &backend{srv: s, client: client, now: now}
	b.relay = s.relayAllowed(client)

	if !s.greeted && !s.open(conn, client, start) {
		return nil
	}
	if s.Implicit && s.TLS != nil {
		// TLS below the guard: the client speaks first (its hello), so
		// there is no early-talker check, and the guard sees plaintext.
		tc, err := handshake(conn, s.TLS, start.Add(cfg.CommandTimeout.Duration), hardEnd)
		if err != nil {
			s.Log.Event(maillog.Warning, "reject", "stage", "tls", "peer", client, "reason", "TLS handshake failed", "err", err)
			s.Log.Event(maillog.Info, "disconnect", "peer", client, "messages", 0, "errors", 1,
				"seconds", fmt.Sprintf("%.3f", now().Sub(start).Seconds()))
			return nil
		}
		b.tlsConn, conn = tc, tc
	}

	g := newGuardConn(conn, hardEnd)
	g.tlsFailed = func() {
		s.Log.Event(maillog.Warning, "reject", "stage", "tls", "peer", client, "reason", "STARTTLS handshake failed")
	}
	if s.greeted {
		g.replies = 1 // the greeting, written by Greet
	}
	b.guard = g

	srv := smtp.NewServer(b)
	srv.Domain = s.Config.Hostname
	srv.ReadTimeout = cfg.CommandTimeout.Duration
	srv.WriteTimeout = cfg.CommandTimeout.Duration
	srv.MaxMessageBytes = cfg.MaxMessageBytes
	srv.MaxRecipients = cfg.MaxRecipients
	// A line of text may hold 64 KiB, far above RFC 5321's 1000 octets; a
	// longer line in DATA ends the session (554 5.6.0, then go-smtp's
	// 500). A command line is bounded at 2048 octets, as Postfix's
	// line_length_limit (go-smtp patch 2). BDAT chunks are not lines and
	// are not limited by either.
	srv.MaxLineLength = maxLine
	srv.MaxCommandLineLength = maxCommandLine
	srv.EnableSMTPUTF8 = true
	srv.EnableDSN = true // RFC 3461: kept in the envelope, honoured by qrun
	if s.TLS != nil && b.tlsConn == nil {
		srv.TLSConfig = s.TLS
	}
	// go-smtp offers AUTH only on a *tls.Conn it made itself (STARTTLS);
	// under implicit TLS it sees our guard, yet the transport is TLS.
	srv.AllowInsecureAuth = b.tlsConn != nil || s.insecureAuth
	// go-smtp advertises REQUIRETLS only inside STARTTLS; Mail refuses
	// it on a session without TLS.
	srv.EnableREQUIRETLS = s.TLS != nil
	srv.ErrorLog = s.Log
	srv.Greeted = s.greeted

	// The session runs on this goroutine (go-smtp patch 12): a goroutine
	// of its own would wake a second thread, only to hand it the greeting.
	stop := context.AfterFunc(ctx, func() { g.Close() })
	srv.ServeConn(g)
	stop()
	srv.Close()
	// go-smtp is done with the connection, but a BDAT's Data may still be
	// cleaning up (it gets ErrDataReset when the session ends): let it
	// remove its tmp/ file before the process exits.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		n := b.inData
		b.mu.Unlock()
		if n == 0 {
			break
		}
	}
	b.mu.Lock()
	s.Log.Event(maillog.Info, "disconnect", "peer", client, "messages", b.messages, "errors", b.errors,
		"seconds", fmt.Sprintf("%.3f", now().Sub(start).Seconds()))
	b.mu.Unlock()
	return nil
}

// backend is go-smtp's Backend and holds what lasts for the whole
// connection: the client, its relay grant, the counters, the guard.
// go-smtp calls NewSession at the first HELO/EHLO and again at the first
// one after STARTTLS; each session holds one greeting's state (the
// transaction, the authenticated user), so STARTTLS forgets it all, as
// RFC 3207 4.2 requires.
type backend struct {
	srv     *Server
	client  Client
	relay   bool
	guard   *guardConn
	tlsConn *tls.Conn // implicit TLS: the TLS go-smtp does not see
	now     func() time.Time

	mu           sync.Mutex // BDAT runs Data in its own goroutine
	conn         *smtp.Conn
	messages     int
	errors       int
	authFailures int
	inData       int // Data calls running (BDAT runs them in a goroutine)
}

// session is one greeting's state. Its methods take the backend's lock.
type session struct {
	b        *backend
	from     *string
	mailOpts *smtp.MailOptions
	rcpts    []string
	dsn      map[string]spool.RcptDSN // RCPT's NOTIFY and ORCPT, when given
	user     string                   // authenticated user, "" before AUTH
	spf      *mailauth.SPF            // this transaction's, when checked
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.conn = c
	b.mu.Unlock()
	return &session{b: b}, nil
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
	errLineTooLong   = reply(554, smtp.EnhancedCode{5, 6, 0}, "Line too long")
	errNestedMail    = reply(503, smtp.EnhancedCode{5, 5, 1}, "Nested MAIL command")
	errRequireTLS    = reply(530, smtp.EnhancedCode{5, 7, 10}, "REQUIRETLS needs a TLS session")
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

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	b := s.b
	if b.guard.ending() {
		return errTooManyErrors // pipelined behind the closing reply: never sent
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg := b.srv.Config
	if b.messages >= cfg.SMTP.MaxMessages {
		b.guard.endAfterReply()
		return errTooManyMsgs
	}
	if s.from != nil {
		// RFC 5321 4.1.4: only RSET, EHLO or QUIT abort a transaction.
		// go-smtp would start a new one but keep the old recipients in
		// its count, so the two would disagree about the transaction.
		return b.refuse("mail", errNestedMail, "from", from)
	}
	if cfg.SMTP.RequireAuth && s.user == "" && !b.client.Local {
		return b.refuse("mail", errAuthRequired, "from", from)
	}
	if opts.RequireTLS && !b.isTLS() {
		return b.refuse("mail", errRequireTLS, "from", from)
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
	if s.user != "" && !ownsSender(cfg, s.user, from) {
		return b.refuse("mail", errNotOwner, "from", from, "user", s.user)
	}
	if err := b.srv.Spool.CheckReserve(cfg.Spool.MinFreeBytes, opts.Size); err != nil {
		if spool.IsNoSpace(err) {
			return b.refuse("mail", errNoSpace, "detail", err)
		}
		b.srv.Log.Event(maillog.Error, "error", "stage", "mail", "err", err)
		return errLocal
	}
	if err := s.checkSPF(from); err != nil {
		return err
	}
	if ms := b.srv.Milters; ms != nil {
		if err := s.milterMail(ms, from, opts); err != nil {
			return err
		}
	}
	s.from, s.mailOpts, s.rcpts, s.dsn = &from, opts, nil, nil
	return nil
}

func reasonOf(err error) string {
	var ae *address.Error
	if errors.As(err, &ae) {
		return ae.Msg
	}
	return "invalid"
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	b := s.b
	if b.guard.ending() {
		return errTooManyErrors
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg := b.srv.Config
	if opts.SourceRoute != "" {
		// go-smtp passes the mailbox alone (patch 1 keeps the route).
		return b.refuse("rcpt", errSourceRoute, "from", *s.from, "rcpt", to)
	}
	if address.EqualFold(to, "postmaster") {
		// RFC 5321 4.5.1: <Postmaster> without a domain MUST be accepted;
		// go-smtp passes it as it came.
		to = "postmaster@" + cfg.Hostname
	}
	a, err := address.Check(to)
	if err != nil {
		return b.refuse("rcpt", reply(553, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address: "+reasonOf(err)), "from", *s.from, "rcpt", to)
	}
	if !s.mailOpts.UTF8 && !address.IsASCII(to) {
		return b.refuse("rcpt", errNeedUTF8, "from", *s.from, "rcpt", to)
	}
	local := cfg.SMTP.IsLocalDomain(a.Domain)
	postmaster := address.EqualFold(a.Local, "postmaster") && (local || address.EqualFold(a.Domain, cfg.Hostname))
	if postmaster {
		// Case-insensitive by RFC 5321 4.5.1: one spelling, so that
		// "Postmaster" and "postmaster" are one recipient.
		a.Local = "postmaster"
	}
	if !local && !postmaster && !b.relay && s.user == "" {
		return b.refuse("rcpt", errRelayDenied, "from", *s.from, "rcpt", a)
	}
	if cfg.Local.IsLocalDelivery(a.Domain) && !postmaster {
		if err := localuser.Known(cfg, a.Local); errors.Is(err, localuser.ErrUnknownRecipient) {
			return b.refuse("rcpt", errUnknownUser, "from", *s.from, "rcpt", a)
		} else if err != nil {
			b.srv.Log.Event(maillog.Error, "error", "stage", "rcpt", "rcpt", a, "err", err)
			return errLocal
		}
	}
	for _, r := range s.rcpts {
		if r == a.String() {
			return nil // a duplicate gets one copy
		}
	}
	if ms := b.srv.Milters; ms != nil {
		if err := s.milterRcpt(ms, a.String()); err != nil {
			return err
		}
	}
	s.rcpts = append(s.rcpts, a.String())
	if opts != nil && (len(opts.Notify) > 0 || opts.OriginalRecipient != "") {
		d := spool.RcptDSN{}
		for _, n := range opts.Notify {
			d.Notify = append(d.Notify, string(n))
		}
		if opts.OriginalRecipient != "" {
			d.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
		if s.dsn == nil {
			s.dsn = map[string]spool.RcptDSN{}
		}
		s.dsn[a.String()] = d
	}
	return nil
}

func (s *session) Reset() {
	s.b.mu.Lock()
	s.from, s.mailOpts, s.rcpts, s.dsn, s.spf = nil, nil, nil, nil, nil
	s.b.mu.Unlock()
	if ms := s.b.srv.Milters; ms != nil {
		ms.Abort()
	}
}

func (s *session) Logout() error { return nil }

// Data streams the message into the spool, checking it on the way, and
// answers 250 with the queue ID only after the commit.
func (s *session) Data(r io.Reader) error {
	b := s.b
	if b.guard.ending() {
		return errTooManyErrors
	}
	b.mu.Lock()
	b.inData++
	defer func() {
		b.mu.Lock()
		b.inData--
		b.mu.Unlock()
	}()
	if s.from == nil || len(s.rcpts) == 0 {
		b.mu.Unlock()
		return reply(503, smtp.EnhancedCode{5, 5, 1}, "Need MAIL and RCPT first")
	}
	from, opts, rcpts, user, dsn, spfRes := *s.from, s.mailOpts, append([]string(nil), s.rcpts...), s.user, s.dsn, s.spf
	helo, ehlo := b.conn.Hostname(), b.conn.Extended()
	st, secure := b.tlsState()
	b.mu.Unlock()

	cfg := b.srv.Config
	b.guard.extendRead(cfg.SMTP.DataTimeout.Duration)
	defer b.guard.extendRead(cfg.SMTP.CommandTimeout.Duration)

	m, err := b.srv.Spool.New()
	if err != nil {
		return b.localError("data", err)
	}
	proto := protocol(opts, ehlo, user, secure)
	now := b.now()
	tlsInfo, using := "none", ""
	if secure {
		tlsInfo, using = tlsVersion(st.Version)+"/"+tls.CipherSuiteName(st.CipherSuite), tlsSummary(st)
	}
	if _, err := io.WriteString(m, receivedHeader(helo, b.client, cfg.Hostname, proto, m.ID(), rcpts, now, using, user)); err != nil {
		m.Abort()
		return b.localError("data", err)
	}
	dst, authRes := s.authFilter(m, spfRes)
	// A submission server (require_auth) completes the header, as an
	// MSA does (RFC 6409 8.1-8.3).
	var w io.Writer = dst
	var fix *headerFixer
	if cfg.SMTP.RequireAuth {
		fix = newHeaderFixer(dst, cfg.Hostname, from, now)
		w = fix
	}
	chk := newBodyCheck(w, cfg.SMTP.MaxReceived)
	if _, err := io.CopyBuffer(chk, r, make([]byte, 16<<10)); err != nil {
		m.Abort()
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.refuse("data", se, "from", from, "nrcpts", len(rcpts))
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.refuse("data", errLineTooLong, "from", from, "nrcpts", len(rcpts))
		}
		if errors.Is(err, errCheckWrite) {
			return b.localError("data", err)
		}
		// The client went away or timed out mid-message.
		b.srv.Log.Event(maillog.Warning, "reject", "stage", "data", "peer", b.client, "reason", "connection lost during DATA", "err", err)
		return reply(451, smtp.EnhancedCode{4, 4, 2}, "Connection problem during DATA")
	}
	bad := chk.finish()
	if bad != nil {
		m.Abort()
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.refuse("data", bad, "from", from, "nrcpts", len(rcpts))
	}
	// The header fixer writes through the Authentication-Results filter:
	// it ends first.
	if fix != nil {
		if err := fix.finish(); err != nil {
			m.Abort()
			return b.localError("data", err)
		}
	}
	if authRes != nil {
		if err := authRes.Flush(); err != nil {
			m.Abort()
			return b.localError("data", err)
		}
	}
	body := string(opts.Body)
	if body == "" {
		body = "7BIT"
	}
	env := &spool.Envelope{
		Received: now, From: from, Rcpts: rcpts, Peer: b.client.String(),
		Helo: sanitizeHelo(helo), Protocol: proto, Body: body, UTF8: opts.UTF8, RequireTLS: opts.RequireTLS,
		Ret: string(opts.Return), EnvID: opts.EnvelopeID, DSN: dsn,
	}
	hold := false
	if b.srv.Checks != nil && authRes == nil {
		if hold, err = s.authenticate(m, *spfRes, from, len(rcpts)); err != nil {
			return err
		}
	}
	commit := m.Commit
	if ms := b.srv.Milters; ms != nil {
		if commit, err = s.milterData(ms, m, env); err != nil {
			return err
		}
	}
	if hold {
		commit = s.held(m, "DMARC quarantine")
	}
	if err := commit(env); err != nil {
		return b.localError("data", err)
	}
	b.mu.Lock()
	b.messages++
	b.mu.Unlock()
	b.srv.Log.Event(maillog.Info, "queued", "id", env.ID, "from", "<"+env.From+">", "size", env.Size,
		"nrcpts", len(env.Rcpts), "peer", b.client, "helo", env.Helo, "proto", proto, "tls", tlsInfo, "auth", orDash(user))
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

// protocol is the WITH of the Received header: RFC 3848's ESMTPS/ESMTPA/
// ESMTPSA and RFC 6531's UTF8SMTP forms.
func protocol(opts *smtp.MailOptions, ehlo bool, user string, secure bool) string {
	p := "SMTP"
	if ehlo {
		p = "ESMTP"
		if opts.UTF8 {
			p = "UTF8SMTP"
		}
	}
	if secure {
		p += "S"
	}
	if user != "" && ehlo {
		p += "A"
	}
	return p
}
