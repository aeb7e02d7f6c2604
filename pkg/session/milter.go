package session

import (
	"crypto/tls"
	"fmt"

	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/milter"
	"smtp-bs/pkg/spool"
)

// milterReply is the one place a milter's verdict becomes an SMTP reply:
// the milter's own code and text when it gave them, else Postfix's words.
func milterReply(v milter.Verdict) *smtp.SMTPError {
	code, ec, text := v.Code, smtp.EnhancedCode{v.Status[0], v.Status[1], v.Status[2]}, v.Text
	switch {
	case v.Kind == milter.TempFail && code == 0:
		return reply(451, smtp.EnhancedCode{4, 7, 1}, "Service unavailable - try again later")
	case v.Kind == milter.Reject && code == 0:
		return reply(550, smtp.EnhancedCode{5, 7, 1}, "Command rejected")
	}
	if ec[0] == 0 {
		ec = smtp.EnhancedCode{code / 100, 7, 1}
	}
	if text == "" {
		text = "Command rejected"
		if code/100 == 4 {
			text = "Service unavailable - try again later"
		}
	}
	return reply(code, ec, text)
}

// milterMail asks the milters about MAIL FROM. Call with b.mu held.
func (s *session) milterMail(ms *milter.Session, from string, opts *smtp.MailOptions) error {
	b := s.b
	info := milter.MailInfo{Helo: b.conn.Hostname(), AuthUser: s.user, From: from, Args: mailArgs(opts)}
	if st, ok := b.tlsState(); ok {
		info.TLSVersion, info.Cipher = tlsVersion(st.Version), tls.CipherSuiteName(st.CipherSuite)
	}
	v := ms.Mail(info)
	if v.Kind == milter.Reject || v.Kind == milter.TempFail {
		return b.refuse("mail", milterReply(v), "from", from, "milter", v.Milter, "milter_stage", v.Stage)
	}
	return nil
}

// milterRcpt asks the milters about one recipient. Call with b.mu held.
func (s *session) milterRcpt(ms *milter.Session, rcpt string) error {
	v := ms.Rcpt(rcpt, nil)
	if v.Kind == milter.Reject || v.Kind == milter.TempFail {
		return s.b.refuse("rcpt", milterReply(v), "from", *s.from, "rcpt", rcpt, "milter", v.Milter, "milter_stage", v.Stage)
	}
	return nil
}

func mailArgs(opts *smtp.MailOptions) []string {
	var args []string
	if opts.Body != "" {
		args = append(args, "BODY="+string(opts.Body))
	}
	if opts.Size > 0 {
		args = append(args, fmt.Sprintf("SIZE=%d", opts.Size))
	}
	if opts.UTF8 {
		args = append(args, "SMTPUTF8")
	}
	if opts.RequireTLS {
		args = append(args, "REQUIRETLS")
	}
	return args
}

// milterData shows the message in m, complete and checked, to the milters
// before anything is committed, and applies what they decided to m and
// env: a changed content is written anew under the same queue ID. It
// returns the commit to use (into hold/ when a milter quarantined the
// message), or the reply that ends the transaction, m aborted.
func (s *session) milterData(ms *milter.Session, m *spool.Incoming, env *spool.Envelope) (func(*spool.Envelope) error, error) {
	b := s.b
	src, err := m.Content()
	if err != nil {
		m.Abort()
		ms.Abort()
		return nil, b.localError("data", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		m.Abort()
		ms.Abort()
		return nil, b.localError("data", err)
	}
	res, err := ms.Content(src, fi.Size(), m.ID(), milter.Envelope{From: env.From, Rcpts: env.Rcpts})
	if err != nil {
		m.Abort()
		return nil, b.localError("data", err)
	}
	v := res.Verdict
	switch v.Kind {
	case milter.Reject, milter.TempFail:
		m.Abort()
		b.mu.Lock()
		defer b.mu.Unlock()
		return nil, b.refuse("data", milterReply(v), "id", m.ID(), "from", env.From, "nrcpts", len(env.Rcpts),
			"milter", v.Milter, "milter_stage", v.Stage)
	case milter.Discard:
		return nil, s.discard(m, env, fmt.Sprintf("milter %s at %s", v.Milter, v.Stage))
	}
	if len(res.Envelope.Rcpts) == 0 {
		return nil, s.discard(m, env, "the milters removed every recipient")
	}
	env.From, env.Rcpts = res.Envelope.From, res.Envelope.Rcpts
	for _, a := range append([]string{env.From}, env.Rcpts...) {
		if !address.IsASCII(a) {
			env.UTF8 = true
		}
	}
	if res.Changed() {
		if err := m.Rewrite(); err != nil {
			m.Abort()
			return nil, b.localError("data", err)
		}
		if _, err := res.WriteTo(m); err != nil {
			m.Abort()
			return nil, b.localError("data", err)
		}
	}
	if res.Quarantine == "" {
		return m.Commit, nil
	}
	return func(env *spool.Envelope) error {
		if err := m.CommitHeld(env); err != nil {
			return err
		}
		b.srv.Log.Event(maillog.Warning, "hold", "id", env.ID, "reason", res.Quarantine, "milter", res.QuarantineBy)
		return nil
	}, nil
}

// discard drops the message yet answers as if it were queued, as a
// milter's discard means: the client must not learn of it.
func (s *session) discard(m *spool.Incoming, env *spool.Envelope, why string) error {
	b := s.b
	id := m.ID()
	m.Abort()
	b.mu.Lock()
	b.messages++
	b.mu.Unlock()
	b.srv.Log.Event(maillog.Warning, "discard", "id", id, "from", "<"+env.From+">", "nrcpts", len(env.Rcpts),
		"peer", b.client, "reason", why)
	return reply(250, smtp.EnhancedCode{2, 0, 0}, "OK: queued as "+id)
}
