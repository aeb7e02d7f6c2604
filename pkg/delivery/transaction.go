package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/spool"
)

// Deliver runs one transaction for rcpts at dest: resolve, then try the
// addresses in order until one takes the transaction.
func (t *Transport) Deliver(ctx context.Context, dest Destination, env *spool.Envelope, rcpts []int, data io.Reader) []Result {
	all := func(st spool.Status, reply string) []Result {
		out := make([]Result, len(rcpts))
		for i, r := range rcpts {
			out[i] = Result{Rcpt: r, Status: st, Reply: reply}
		}
		return out
	}
	if domain, ok := strings.CutPrefix(dest.Key, loopKey); ok {
		return all(spool.Deferred, fmt.Sprintf("5.4.6 mail for %s would loop back to this host: it is one of our names, "+
			"but neither delivered here ([local] domains) nor routed ([delivery.routes], smarthost)", domain))
	}
	if env.RequireTLS {
		// RFC 8689: only over TLS with a verified certificate, to a hop
		// that promises REQUIRETLS onward (checked at MAIL FROM).
		dest.TLS, dest.VerifyTLS = "required", true
		if dest.Relay && t.o.SmarthostTLS == "implicit" {
			dest.TLS = "implicit"
		}
	}
	targets, st, reply := t.resolve(ctx, dest)
	if len(targets) == 0 {
		return all(st, reply)
	}
	var lastErr string
	for _, tg := range targets {
		dest, deferred := t.withPolicy(ctx, dest, tg)
		if deferred != "" {
			lastErr = deferred
			continue
		}
		cn, err := t.get(ctx, tg, dest)
		if err != nil {
			lastErr = err.Error()
			continue
		}
		res, retry, clean := t.transaction(cn.c, tg, env, rcpts, data)
		t.put(cn, clean)
		if retry != "" {
			lastErr = retry // MAIL FROM got a 4xx: the next host may do better
			continue
		}
		return res
	}
	return all(spool.Deferred, lastErr)
}

// open connects and sets up the session: EHLO, TLS as the policy says,
// AUTH for relays when credentials are configured.
func (t *Transport) open(ctx context.Context, tg target, dest Destination) (*smtp.Client, error) {
	dial := func() (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, t.o.ConnectTimeout)
		defer cancel()
		conn, err := t.o.Dial(dctx, "tcp", tg.addr)
		if err != nil {
			return nil, fmt.Errorf("connect to %s[%s]: %w", tg.host, tg.addr, err)
		}
		return conn, nil
	}
	verify := dest.VerifyTLS || t.o.TLSVerify && (dest.TLS == "required" || dest.TLS == "implicit")
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	var c *smtp.Client
	switch dest.TLS {
	case "implicit":
		c = smtp.NewClient(tlsClient(conn, t.tlsConfig(tg.host, verify, dest)))
	case "required", "opportunistic":
		// go-smtp's only STARTTLS entry point says EHLO localhost before
		// TLS; Hello below repeats EHLO with our name inside TLS.
		c, err = smtp.NewClientStartTLS(conn, t.tlsConfig(tg.host, verify, dest))
		if err != nil {
			if dest.TLS == "required" {
				return nil, fmt.Errorf("%s[%s]: TLS is required but failed: %w", tg.host, tg.addr, err)
			}
			// Opportunistic: try again in clear on a fresh connection.
			if conn, err = dial(); err != nil {
				return nil, err
			}
			c = smtp.NewClient(conn)
		}
	default:
		c = smtp.NewClient(conn)
	}
	t.timeouts(c)
	if err := c.Hello(t.o.Hostname); err != nil {
		c.Close()
		if dest.TLS == "opportunistic" && isTLSError(err) {
			conn, derr := dial()
			if derr != nil {
				return nil, derr
			}
			c = smtp.NewClient(conn)
			t.timeouts(c)
			if err := c.Hello(t.o.Hostname); err != nil {
				c.Close()
				return nil, fmt.Errorf("%s[%s]: EHLO: %w", tg.host, tg.addr, err)
			}
		} else {
			return nil, fmt.Errorf("%s[%s]: %w", tg.host, tg.addr, err)
		}
	}
	if dest.Relay && t.o.AuthUser != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS {
			c.Close()
			return nil, fmt.Errorf("%s[%s]: not sending the password in clear: no TLS (set smarthost_tls = \"required\")", tg.host, tg.addr)
		}
		var mech sasl.Client
		switch {
		case c.SupportsAuth("PLAIN"):
			mech = sasl.NewPlainClient("", t.o.AuthUser, t.o.AuthPass)
		case c.SupportsAuth("LOGIN"):
			mech = sasl.NewLoginClient(t.o.AuthUser, t.o.AuthPass)
		default:
			c.Close()
			return nil, fmt.Errorf("%s[%s]: offers no AUTH PLAIN or LOGIN", tg.host, tg.addr)
		}
		if err := c.Auth(mech); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s[%s]: AUTH failed: %w", tg.host, tg.addr, err)
		}
	}
	return c, nil
}

func (t *Transport) timeouts(c *smtp.Client) {
	if t.o.CommandTimeout > 0 {
		c.CommandTimeout = t.o.CommandTimeout
		c.SubmissionTimeout = 2 * t.o.CommandTimeout
	}
}

func isTLSError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "tls:") || strings.Contains(s, "x509:") || strings.Contains(s, "certificate")
}

// transaction sends one message. A non-empty retry means MAIL FROM failed
// temporarily and another host should be tried. clean means every command
// got its reply, so the connection may carry another transaction after RSET.
func (t *Transport) transaction(c *smtp.Client, tg target, env *spool.Envelope, rcpts []int, data io.Reader) (res []Result, retry string, clean bool) {
	host := tg.host
	all := func(st spool.Status, reply string) []Result {
		out := make([]Result, len(rcpts))
		for i, r := range rcpts {
			out[i] = Result{Rcpt: r, Status: st, Reply: reply}
		}
		return out
	}
	// SMTPUTF8 is needed only for a non-ASCII address (RFC 6531 3.4): a
	// client that said SMTPUTF8 over an ASCII envelope (Go's net/smtp always
	// does) must not make its mail undeliverable to a hop without it.
	utf8 := env.UTF8 && NeedsSMTPUTF8(env.From, env.Rcpts, rcpts)
	opts := &smtp.MailOptions{Size: env.Size, UTF8: utf8, RequireTLS: env.RequireTLS}
	if err := c.Mail(env.From, opts); err != nil {
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		if env.RequireTLS && !isReply && strings.Contains(err.Error(), "REQUIRETLS") {
			return all(spool.Failed, fmt.Sprintf("5.7.30 %s does not support REQUIRETLS, which the sender required", host)), "", false
		}
		if utf8 && !isReply {
			return all(spool.Failed, fmt.Sprintf("5.6.7 %s does not support SMTPUTF8, which this message needs", host)), "", false
		}
		st, reply := classify(err, host, "MAIL FROM")
		if st == spool.Deferred {
			return nil, reply, isReply
		}
		return all(st, reply), "", isReply
	}
	out := make([]Result, 0, len(rcpts))
	var accepted []int
	for _, r := range rcpts {
		if err := c.Rcpt(env.Rcpts[r], nil); err != nil {
			st, reply := classify(err, host, "RCPT TO")
			out = append(out, Result{Rcpt: r, Status: st, Reply: reply})
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				// The connection broke: the rest cannot be asked.
				for _, rest := range rcpts[len(out):] {
					out = append(out, Result{Rcpt: rest, Status: spool.Deferred, Reply: reply})
				}
				return out, "", false
			}
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		return out, "", true
	}
	st, reply, clean := sendData(c, host, data)
	for _, r := range accepted {
		out = append(out, Result{Rcpt: r, Status: st, Reply: reply})
	}
	return out, "", clean
}

// sendData sends the content; clean as for transaction.
func sendData(c *smtp.Client, host string, data io.Reader) (spool.Status, string, bool) {
	var se *smtp.SMTPError
	w, err := c.Data()
	if err != nil {
		st, reply := classify(err, host, "DATA")
		return st, reply, errors.As(err, &se)
	}
	if _, err := io.Copy(w, data); err != nil {
		w.Close()
		return spool.Deferred, fmt.Sprintf("sending to %s: %v", host, err), false
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		st, reply := classify(err, host, "end of DATA")
		return st, reply, errors.As(err, &se)
	}
	return spool.Sent, fmt.Sprintf("%s said: 250 %s", host, oneLine(resp.StatusText)), true
}

// classify turns an error into an outcome: a 5xx is permanent, everything
// else (4xx, network trouble) is worth another try.
func classify(err error, host, stage string) (spool.Status, string) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		reply := fmt.Sprintf("%s said: %d", host, se.Code)
		if se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode != smtp.NoEnhancedCode {
			reply += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		reply += " " + oneLine(se.Message) + " (in reply to " + stage + ")"
		if se.Code >= 500 && se.Code < 600 {
			return spool.Failed, reply
		}
		return spool.Deferred, reply
	}
	return spool.Deferred, fmt.Sprintf("%s: %s: %v", host, stage, err)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
