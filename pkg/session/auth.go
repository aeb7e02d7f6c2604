package session

import (
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/auth"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
)

// AUTH and the submission policy (RFC 4954, RFC 6409).
//
// PLAIN and LOGIN are offered only over TLS (go-smtp refuses AUTH without
// it, 523 5.7.10). Each failed attempt is logged with the user name only
// when that user exists (a password typed into the user field must not
// reach the log; passwords never do), answered after [auth]
// failure_delay, and counted for the whole connection: the
// max_failures-th ends the session with 421. An authenticated client may
// relay, and may use only the envelope senders that belong to it.

var (
	errAuthRequired = reply(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	errNotOwner     = reply(553, smtp.EnhancedCode{5, 7, 1}, "Sender address not owned by user")
	errAuthTooMany  = reply(421, smtp.EnhancedCode{4, 7, 0}, "Too many failed authentication attempts, closing connection")
	errAuthInMail   = reply(503, smtp.EnhancedCode{5, 5, 1}, "AUTH not permitted during a mail transaction")
)

func (s *session) AuthMechanisms() []string {
	if s.b.srv.Credentials == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.b.srv.Credentials == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	if s.b.guard.ending() {
		return nil, errTooManyErrors
	}
	// RFC 4954 4: AUTH inside a transaction MUST be refused (go-smtp does
	// not). The sender was checked against no user at MAIL; a user
	// authenticated now would let it relay as a sender it does not own.
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.from != nil {
		return nil, s.b.refuse("auth", errAuthInMail, "from", *s.from)
	}
	var inner sasl.Server
	switch mech {
	case sasl.Plain:
		inner = auth.NewPlainServer(s.checkPassword)
	case sasl.Login:
		inner = auth.NewLoginServer(s.checkPassword)
	default:
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return &countedServer{inner: inner, s: s}, nil
}

// countedServer counts a malformed exchange as a failure too: it is
// answered after the same delay and ends the session as soon.
type countedServer struct {
	inner sasl.Server
	s     *session
}

func (c *countedServer) Next(resp []byte) ([]byte, bool, error) {
	ch, done, err := c.inner.Next(resp)
	if err == auth.ErrMalformed || err == auth.ErrIdentity {
		return nil, false, c.s.b.authFailed("", err.(*smtp.SMTPError))
	}
	return ch, done, err
}

// checkPassword is the Checker behind PLAIN and LOGIN.
func (s *session) checkPassword(user, password string) error {
	b := s.b
	if !b.srv.Credentials.Verify(user, password) { // slow on purpose: no lock held
		return b.authFailed(user, smtp.ErrAuthFailed)
	}
	b.mu.Lock()
	s.user = user
	b.mu.Unlock()
	b.srv.Log.Event(maillog.Info, "auth", "peer", b.client, "user", user, "result", "ok")
	return nil
}

// authFailed logs and counts a failed attempt, waits, and returns the
// reply: answer, or a 421 that ends the session at the limit.
func (b *backend) authFailed(user string, answer *smtp.SMTPError) error {
	cfg := b.srv.Config.Auth
	b.mu.Lock()
	b.authFailures++
	n := b.authFailures
	b.mu.Unlock()
	logUser := "(unknown)"
	if user != "" && b.srv.Credentials.Has(user) {
		logUser = user
	}
	b.srv.Log.Event(maillog.Warning, "auth", "peer", b.client, "user", logUser, "result", "failed",
		"reason", answer.Message, "failures", n)
	b.sleep(cfg.FailureDelay.Duration)
	if n >= cfg.MaxFailures {
		b.guard.endAfterReply()
		return errAuthTooMany
	}
	return answer
}

// sleep waits d, but not past the session's hard end.
func (b *backend) sleep(d time.Duration) {
	if left := time.Until(b.guard.hardEnd); d > left {
		d = left
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// ownsSender reports whether user may use from as envelope sender: an
// address or "@domain" listed for it in [auth.senders]; without an entry,
// its own name when that is an address, or name@<a local domain>. The
// null sender is allowed (bounces and auto-replies).
func ownsSender(cfg *config.Config, user, from string) bool {
	if from == "" {
		return true
	}
	at := strings.LastIndexByte(from, '@')
	if at < 0 {
		return false
	}
	domain := from[at+1:]
	allowed, listed := cfg.Auth.Senders[user]
	if !listed {
		if strings.Contains(user, "@") {
			return address.EqualFold(user, from)
		}
		return address.EqualFold(from[:at], user) && cfg.SMTP.IsLocalDomain(domain)
	}
	for _, a := range allowed {
		if strings.HasPrefix(a, "@") {
			if address.EqualFold(a[1:], domain) {
				return true
			}
		} else if address.EqualFold(a, from) {
			return true
		}
	}
	return false
}
