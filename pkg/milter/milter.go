// Package milter is smtp-bs's side of the Sendmail milter protocol, spoken
// through github.com/emersion/go-milter: one Session per SMTP connection,
// holding one connection to each configured [[milter]].
//
// What it promises:
//   - The connect, HELO, MAIL and RCPT events reach every milter as the
//     SMTP session goes, after smtp-bs's own policy has passed them. The
//     message reaches them at the end of DATA, to each milter in turn,
//     each seeing the message as the milters before it left it (Postfix
//     does the same). The caller commits nothing before Content returns.
//   - A verdict is Continue, Accept (this milter is done: for the
//     connection at connect or HELO, else for the transaction), Reject or
//     TempFail (with the milter's own reply when it gave one), or Discard.
//     A reject or tempfail at connect or HELO applies to every MAIL; one
//     at RCPT to that recipient only.
//   - The first header a milter sees is smtp-bs's own Received header,
//     and it stays first and unchanged: a milter can neither change nor
//     delete it, nor insert a header above it.
//   - A milter that cannot be reached, times out or breaks the protocol is
//     dropped for the rest of the connection and its default_action holds
//     from then on: "tempfail" answers every later MAIL, RCPT and DATA
//     451 4.7.1, "accept" goes on without it. There is no reconnection:
//     in a chroot the socket would be out of reach.
//   - Without milters configured none of this exists: the caller holds a
//     nil *Session and pays nothing.
package milter

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	gomilter "github.com/emersion/go-milter"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
)

// Kind is what a milter decided.
type Kind int

// The verdicts.
const (
	Continue Kind = iota
	Accept
	Reject
	TempFail
	Discard
)

func (k Kind) String() string {
	return [...]string{"continue", "accept", "reject", "tempfail", "discard"}[k]
}

// Verdict is a milter's answer at one stage.
type Verdict struct {
	Kind Kind
	// Code, Status and Text are the milter's own reply for Reject and
	// TempFail; Code 0 means it gave none (the caller's default then).
	Code   int
	Status [3]int // enhanced status code; zero when none was given
	Text   string
	Milter string // the milter that decided
	Stage  string // connect, helo, mail, rcpt, header, eoh, body, eom
	// Down: the milter failed and this is its default_action.
	Down bool
}

// Final reports whether the verdict ends the command or transaction.
func (v Verdict) Final() bool { return v.Kind == Reject || v.Kind == TempFail || v.Kind == Discard }

// Peer is what the connect stage tells the milters.
type Peer struct {
	Addr     netip.Addr // invalid for a local submission
	Port     uint16
	Hostname string // our host name (macro j)
	Daemon   string // {daemon_name}
}

// MailInfo is what the MAIL stage tells the milters (and the HELO stage,
// sent just before it when the greeting or the TLS state changed).
type MailInfo struct {
	Helo       string
	TLSVersion string // "" without TLS
	Cipher     string
	AuthUser   string
	From       string // "" is <>
	Args       []string
}

// What smtp-bs offers to milters: every modification go-milter's client
// understands, and every protocol step a milter may ask to skip. A milter
// that speaks a protocol version below 6 cannot be offered the version 6
// bits (go-milter refuses the downgrade), so it gets a second connection
// with only the old ones.
const (
	actionsV6 = gomilter.OptAddHeader | gomilter.OptChangeBody | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt |
		gomilter.OptChangeHeader | gomilter.OptQuarantine | gomilter.OptChangeFrom
	protocolV6 = gomilter.OptNoConnect | gomilter.OptNoHelo | gomilter.OptNoMailFrom | gomilter.OptNoRcptTo |
		gomilter.OptNoBody | gomilter.OptNoHeaders | gomilter.OptNoEOH | gomilter.OptNoUnknown | gomilter.OptNoData |
		gomilter.OptSkip | gomilter.OptNoHeaderReply | gomilter.OptNoConnReply | gomilter.OptNoHeloReply |
		gomilter.OptNoMailReply | gomilter.OptNoRcptReply | gomilter.OptNoDataReply | gomilter.OptNoUnknownReply |
		gomilter.OptNoEOHReply | gomilter.OptNoBodyReply | gomilter.OptHeaderLeadingSpace
	actionsV2  = actionsV6 & 0x3f
	protocolV2 = protocolV6 & 0x7f
)

// Session is the milters of one SMTP connection. Its methods are safe for
// concurrent use (BDAT runs DATA beside RSET).
type Session struct {
	log *maillog.Logger

	mu      sync.Mutex
	fs      []*filter
	connV   Verdict // the connect stage's final verdict, for the whole connection
	heloV   Verdict // the last HELO's final verdict
	helo    string  // the greeting and TLS state last sent
	heloSet bool
	discard Verdict // the transaction is being discarded (Kind Discard)
}

// filter is one milter's connection.
type filter struct {
	cfg     config.Milter
	cs      *gomilter.ClientSession
	conn    net.Conn // to cut a hung milter off without waiting for it
	offered gomilter.OptProtocol
	lead    bool // header values keep their leading space (SMFIP_HDR_LEADSPC)

	down     bool // failed: default_action from now on
	accepted bool // accepted the connection: skip it from now on
	txDone   bool // accepted the transaction: skip it until the next one
	open     bool // MAIL went to it and the transaction has not ended
}

func (f *filter) active() bool { return !f.down && !f.accepted && !f.txDone }

// Open connects to every milter at once and sends each the connect stage.
// It returns when all have answered or failed; a milter that failed is
// logged and its default_action applies.
func Open(cfgs []config.Milter, peer Peer, log *maillog.Logger) *Session {
	s := &Session{log: log, fs: make([]*filter, len(cfgs))}
	vs := make([]Verdict, len(cfgs))
	var wg sync.WaitGroup
	for i := range cfgs {
		f := &filter{cfg: cfgs[i]}
		s.fs[i] = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			vs[i] = s.connect(f, peer)
		}()
	}
	wg.Wait()
	for _, v := range vs {
		if v.Final() {
			s.connV = v
			break
		}
	}
	return s
}

// recordingDialer keeps the connection it made.
type recordingDialer struct {
	net.Dialer
	conn net.Conn
}

func (d *recordingDialer) Dial(network, addr string) (net.Conn, error) {
	c, err := d.Dialer.Dial(network, addr)
	d.conn = c
	return c, err
}

func (s *Session) dial(f *filter, actions gomilter.OptAction, proto gomilter.OptProtocol) error {
	network, addr := f.cfg.Network()
	d := &recordingDialer{Dialer: net.Dialer{Timeout: f.cfg.ConnectTimeout.Duration}}
	c := gomilter.NewClientWithOptions(network, addr, gomilter.ClientOptions{
		Dialer:       d,
		ReadTimeout:  f.cfg.Timeout.Duration,
		WriteTimeout: f.cfg.Timeout.Duration,
		ActionMask:   actions,
		ProtocolMask: proto,
	})
	// The negotiation is bounded by connect_timeout, not by the longer
	// per-command timeout.
	cs, err := c.Session()
	if err != nil {
		if d.conn != nil {
			d.conn.Close()
		}
		return err
	}
	// Only what we offered: a milter that claims more would make go-milter
	// wait for replies that never come, or skip ones that do.
	cs.ProtocolOpts &= proto
	f.cs, f.conn, f.offered = cs, d.conn, proto
	f.lead = cs.ProtocolOpts&gomilter.OptHeaderLeadingSpace != 0
	return nil
}

func (s *Session) connect(f *filter, peer Peer) Verdict {
	err := s.dial(f, actionsV6, protocolV6)
	if errors.Is(err, gomilter.ErrUnsupportedMilterVersion) {
		err = s.dial(f, actionsV2, protocolV2)
	}
	if err != nil {
		return s.fail(f, "connect", err)
	}
	host, family, addr := "localhost", gomilter.FamilyUnknown, ""
	if a := peer.Addr.Unmap(); a.IsValid() {
		addr = a.String()
		host, family = "["+addr+"]", gomilter.FamilyInet
		if a.Is6() {
			host, family = "[IPv6:"+addr+"]", gomilter.FamilyInet6
		}
	}
	if f.cs.ProtocolOpts&gomilter.OptNoConnect == 0 {
		kv := []string{"j", peer.Hostname, "{daemon_name}", peer.Daemon, "v", "smtp-bs", "{client_name}", "unknown"}
		if addr != "" {
			kv = append(kv, "{client_addr}", addr, "{client_port}", strconv.Itoa(int(peer.Port)))
		}
		if err := f.cs.Macros(gomilter.CodeConn, kv...); err != nil {
			return s.fail(f, "connect", err)
		}
	}
	act, err := f.cs.Conn(host, family, peer.Port, addr)
	v := s.verdict(f, "connect", act, err)
	if v.Kind == Accept {
		f.accepted = true
	}
	return v
}

// fail drops f for the rest of the connection and returns its default
// action.
func (s *Session) fail(f *filter, stage string, err error) Verdict {
	f.down, f.open = true, false
	if f.conn != nil {
		f.conn.Close()
	}
	s.log.Event(maillog.Warning, "milter", "milter", f.cfg.Name, "stage", stage, "result", "unavailable",
		"action", f.cfg.DefaultAction, "err", err)
	if f.cfg.DefaultAction == "tempfail" {
		return Verdict{Kind: TempFail, Milter: f.cfg.Name, Stage: stage, Down: true}
	}
	return Verdict{Kind: Continue}
}

// downVerdict is the tempfail of a milter that went down, if any.
func (s *Session) downVerdict(stage string) (Verdict, bool) {
	for _, f := range s.fs {
		if f.down && f.cfg.DefaultAction == "tempfail" {
			return Verdict{Kind: TempFail, Milter: f.cfg.Name, Stage: stage, Down: true}, true
		}
	}
	return Verdict{}, false
}

// verdict turns a milter's answer into a Verdict; a broken answer fails f.
func (s *Session) verdict(f *filter, stage string, act *gomilter.Action, err error) Verdict {
	if err != nil {
		return s.fail(f, stage, err)
	}
	v := Verdict{Milter: f.cfg.Name, Stage: stage}
	switch act.Code {
	case gomilter.ActContinue, gomilter.ActSkip:
		v.Kind = Continue
	case gomilter.ActAccept:
		v.Kind = Accept
	case gomilter.ActReject:
		v.Kind = Reject
	case gomilter.ActTempFail:
		v.Kind = TempFail
	case gomilter.ActDiscard:
		v.Kind = Discard
	case gomilter.ActReplyCode:
		switch act.SMTPCode / 100 {
		case 4:
			v.Kind = TempFail
		case 5:
			v.Kind = Reject
		default:
			return s.fail(f, stage, fmt.Errorf("reply code %d is neither 4xx nor 5xx", act.SMTPCode))
		}
		v.Code = act.SMTPCode
		v.Status, v.Text = replyText(act.SMTPCode, act.SMTPText)
	default:
		return s.fail(f, stage, fmt.Errorf("unexpected answer %q", rune(act.Code)))
	}
	return v
}

// replyText flattens a milter's reply text (one line, or the lines of
// smfi_setmlreply) into one line for the client, and takes out the
// enhanced status code when its class matches the reply code's.
func replyText(code int, text string) (status [3]int, out string) {
	var parts []string
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if i > 0 && len(line) >= 4 && strings.HasPrefix(line, strconv.Itoa(code)) && (line[3] == '-' || line[3] == ' ') {
			line = line[4:]
		}
		if st, rest, ok := enhanced(line); ok {
			if i == 0 && st[0] == code/100 {
				status = st
			}
			line = rest
		}
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	out = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.Join(parts, " "))
	if len(out) > 400 {
		out = out[:400]
	}
	return status, out
}

// enhanced parses a leading "x.y.z " enhanced status code.
func enhanced(line string) ([3]int, string, bool) {
	word, rest, _ := strings.Cut(line, " ")
	f := strings.Split(word, ".")
	if len(f) != 3 {
		return [3]int{}, line, false
	}
	var st [3]int
	for i, p := range f {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 || len(p) > 3 {
			return [3]int{}, line, false
		}
		st[i] = n
	}
	if st[0] != 2 && st[0] != 4 && st[0] != 5 {
		return [3]int{}, line, false
	}
	return st, rest, true
}

// sendHelo tells the active milters the greeting, when it or the TLS state
// changed since they last heard it. Call with s.mu held.
func (s *Session) sendHelo(m *MailInfo) {
	key := m.Helo + "\x00" + m.TLSVersion + "\x00" + m.Cipher
	if s.heloSet && s.helo == key {
		return
	}
	s.helo, s.heloSet, s.heloV = key, true, Verdict{}
	for _, f := range s.fs {
		if !f.active() {
			continue
		}
		if f.cs.ProtocolOpts&gomilter.OptNoHelo == 0 && m.TLSVersion != "" {
			if err := f.cs.Macros(gomilter.CodeHelo, "{tls_version}", m.TLSVersion, "{cipher}", m.Cipher); err != nil {
				s.noteFinal(s.fail(f, "helo", err))
				continue
			}
		}
		act, err := f.cs.Helo(m.Helo)
		v := s.verdict(f, "helo", act, err)
		if v.Kind == Accept {
			f.accepted = true
		}
		s.noteFinal(v)
	}
}

func (s *Session) noteFinal(v Verdict) {
	if v.Final() && !s.heloV.Final() {
		s.heloV = v
	}
}

// Mail sends MAIL FROM (and the greeting before it, if new). A final
// verdict refuses the MAIL command, except Discard, which accepts it and
// drops the message at the end.
func (s *Session) Mail(m MailInfo) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abortOpen()
	if s.connV.Final() {
		return s.sessionVerdict(s.connV)
	}
	if v, ok := s.downVerdict("mail"); ok {
		return v
	}
	s.sendHelo(&m)
	if s.heloV.Final() {
		return s.sessionVerdict(s.heloV)
	}
	if v, ok := s.downVerdict("mail"); ok {
		return v
	}
	for _, f := range s.fs {
		if !f.active() {
			continue
		}
		if f.cs.ProtocolOpts&gomilter.OptNoMailFrom == 0 {
			kv := []string{"{mail_addr}", m.From}
			if m.AuthUser != "" {
				kv = append(kv, "{auth_authen}", m.AuthUser)
			}
			if err := f.cs.Macros(gomilter.CodeMail, kv...); err != nil {
				if v := s.fail(f, "mail", err); v.Final() {
					s.abortOpen()
					return v
				}
				continue
			}
		}
		act, err := f.cs.Mail(m.From, m.Args)
		v := s.verdict(f, "mail", act, err)
		switch v.Kind {
		case Continue:
			f.open = !f.down
		case Accept:
			f.txDone = true
		case Discard:
			s.abortOpen()
			s.discard = v
			return v
		default:
			s.abortOpen()
			return v
		}
	}
	return Verdict{Kind: Continue}
}

// sessionVerdict applies a connect or HELO verdict to a transaction: a
// discard there discards every message of the session. Call with s.mu
// held.
func (s *Session) sessionVerdict(v Verdict) Verdict {
	if v.Kind == Discard {
		s.discard = v
	}
	return v
}

// Rcpt sends one accepted recipient. Reject and TempFail refuse that
// recipient only; Discard accepts it and drops the message at the end.
func (s *Session) Rcpt(to string, args []string) Verdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.discard.Kind == Discard {
		return Verdict{Kind: Continue}
	}
	if v, ok := s.downVerdict("rcpt"); ok {
		return v
	}
	for _, f := range s.fs {
		if !f.active() || !f.open {
			continue
		}
		if f.cs.ProtocolOpts&gomilter.OptNoRcptTo == 0 {
			if err := f.cs.Macros(gomilter.CodeRcpt, "{rcpt_addr}", to); err != nil {
				if v := s.fail(f, "rcpt", err); v.Final() {
					return v
				}
				continue
			}
		}
		act, err := f.cs.Rcpt(to, args)
		v := s.verdict(f, "rcpt", act, err)
		switch v.Kind {
		case Accept:
			f.txDone = true
		case Discard:
			s.abortOpen()
			s.discard = v
			return v
		case Reject, TempFail:
			return v
		}
	}
	return Verdict{Kind: Continue}
}

// Abort ends the transaction (RSET, a new greeting, a failed DATA).
func (s *Session) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abortOpen()
}

// abortOpen tells every milter with an open transaction that it is over,
// and forgets the transaction's state. Call with s.mu held.
func (s *Session) abortOpen() {
	for _, f := range s.fs {
		if f.open && !f.down {
			if err := f.cs.Abort(); err != nil {
				s.fail(f, "abort", err)
			}
		}
		f.open, f.txDone = false, false
	}
	s.discard = Verdict{}
}

// Close ends every milter session (QUIT).
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.fs {
		if !f.down && f.cs != nil {
			f.cs.Close()
			f.down = true
		}
	}
}
