package session

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/dnsclient"
	"smtp-bs/pkg/mailauth"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// Checks runs [checks] spf and dmarc for clients that neither
// authenticated nor may relay: SPF once per transaction at MAIL, DKIM and
// DMARC after DATA, and our Authentication-Results header. A nil *Checks
// (none configured) costs nothing.
type Checks struct {
	Resolver dnsclient.Resolver
}

// checkSPF evaluates SPF for the transaction MAIL starts and applies
// [checks.spf] policy. Call with b.mu held.
func (s *session) checkSPF(from string) error {
	b := s.b
	s.spf = nil
	if b.srv.Checks == nil || s.user != "" || b.relay || !b.client.Addr.IsValid() {
		return nil
	}
	cfg := b.srv.Config.Checks
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout.Duration)
	defer cancel()
	start := time.Now()
	r := mailauth.CheckSPF(ctx, b.srv.Checks.Resolver, b.client.Addr, b.conn.Hostname(), from)
	kv := []any{"peer", b.client, "from", "<" + from + ">", "result", r.Result, "domain", r.Domain,
		"ms", fmt.Sprintf("%.0f", time.Since(start).Seconds()*1000)}
	if r.Err != nil && r.Result != "pass" {
		kv = append(kv, "err", r.Err)
	}
	b.srv.Log.Event(maillog.Info, "spf", kv...)
	if !cfg.SPF.Enabled {
		s.spf = &r
		return nil
	}
	ec := smtp.EnhancedCode{5, 7, 23} // RFC 7372
	if r.Result == "temperror" || r.Result == "permerror" {
		ec = smtp.EnhancedCode{5, 7, 24}
	}
	switch cfg.SPF.Action(r.Result) {
	case "reject":
		return b.refuse("mail", reply(550, ec, fmt.Sprintf("SPF %s: %s does not permit [%s] to send its mail", r.Result, r.Domain, b.client.Addr)),
			"from", from)
	case "tempfail":
		return b.refuse("mail", reply(451, smtp.EnhancedCode{4, ec[1], ec[2]}, fmt.Sprintf("SPF %s for %s, try again later", r.Result, r.Domain)),
			"from", from)
	}
	s.spf = &r
	return nil
}

// authFilter returns where DATA writes the message: through a filter
// that removes the Authentication-Results fields claiming our authserv-id
// and puts ours first, as the message streams in, when ours is known
// before the body (SPF's, or none for a client not checked: whoever
// sends it, no message reaches a recipient with a verdict we did not
// write, RFC 8601 section 5). With DMARC on, the header waits for the
// body: authenticate writes it, and the filter is nil.
func (s *session) authFilter(m *spool.Incoming, spf *mailauth.SPF) (io.Writer, *mailauth.Filter) {
	c := s.b.srv.Config.Checks
	if s.b.srv.Checks == nil || spf != nil && c.DMARC.Enabled {
		return m, nil
	}
	header := ""
	if spf != nil {
		header = mailauth.Results{SPF: *spf}.Header(c.AuthservID)
	}
	f := mailauth.NewFilter(m, c.AuthservID, header, 0)
	return f, f
}

// authenticate verifies the message in m (DKIM, DMARC), writes it anew
// with our Authentication-Results after our Received header (and every
// field that claims our authserv-id gone), and applies DMARC policy where
// [checks.dmarc] says so. It reports whether the message is to be held;
// on a refusal m is aborted.
func (s *session) authenticate(m *spool.Incoming, spf mailauth.SPF, from string, nrcpts int) (bool, error) {
	b := s.b
	cfg := b.srv.Config.Checks
	src, err := m.Content()
	if err != nil {
		m.Abort()
		return false, b.localError("data", err)
	}
	defer src.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout.Duration)
	res, err := mailauth.CheckMessage(ctx, b.srv.Checks.Resolver, src, spf)
	cancel()
	if err != nil {
		b.srv.Log.Event(maillog.Warning, "dmarc", "id", m.ID(), "err", err)
	}
	if _, err := src.Seek(0, 0); err != nil {
		m.Abort()
		return false, b.localError("data", err)
	}
	removed, err := s.rewrite(m, src, res.Header(cfg.AuthservID))
	if err != nil {
		return false, err
	}
	dkims := ""
	for i, d := range res.DKIM {
		if i > 0 {
			dkims += ","
		}
		dkims += d.Result + ":" + orDash(d.Domain)
	}
	b.srv.Log.Event(maillog.Info, "dmarc", "id", m.ID(), "peer", b.client, "result", res.DMARC.Result, "policy", orDash(res.DMARC.Policy),
		"header_from", orDash(res.DMARC.From), "spf", spf.Result, "dkim", orDash(dkims), "removed_authres", removed,
		"ms", fmt.Sprintf("%.0f", time.Since(start).Seconds()*1000))
	if res.DMARC.Result != "fail" {
		return false, nil
	}
	switch {
	case res.DMARC.Policy == "reject" && cfg.DMARC.Reject:
		m.Abort()
		b.mu.Lock()
		defer b.mu.Unlock()
		return false, b.refuse("data", reply(550, smtp.EnhancedCode{5, 7, 1}, "Message rejected by the DMARC policy of "+ascii(res.DMARC.From)),
			"id", m.ID(), "from", from, "nrcpts", nrcpts)
	case res.DMARC.Policy == "quarantine" && cfg.DMARC.Quarantine:
		return true, nil
	}
	return false, nil
}

// rewrite writes m anew from src with header added and the fields that
// claim our authserv-id removed; on failure m is aborted.
func (s *session) rewrite(m *spool.Incoming, src io.Reader, header string) (int, error) {
	if err := m.Rewrite(); err != nil {
		m.Abort()
		return 0, s.b.localError("data", err)
	}
	n, err := mailauth.Rewrite(m, src, s.b.srv.Config.Checks.AuthservID, header)
	if err != nil {
		m.Abort()
		return 0, s.b.localError("data", err)
	}
	return n, nil
}

// held commits m into hold/ (DMARC's quarantine), logged as a milter's is.
func (s *session) held(m *spool.Incoming, why string) func(*spool.Envelope) error {
	return func(env *spool.Envelope) error {
		if err := m.CommitHeld(env); err != nil {
			return err
		}
		s.b.srv.Log.Event(maillog.Warning, "hold", "id", env.ID, "reason", why)
		return nil
	}
}

// ascii is s for a reply line: printable ASCII only (the From domain
// comes from the message, and may be UTF-8).
func ascii(s string) string {
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}
