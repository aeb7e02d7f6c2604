package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/maillog"
)

// Opening a session. go-smtp's NewClientStartTLS cannot be used: it says
// EHLO localhost before STARTTLS (Postfix's reject_non_fqdn_helo_hostname
// answers 504) and runs the handshake under no deadline at all. So the
// session is built here in steps, each under its own deadline: connect,
// greeting and EHLO with our hostname (go-smtp's NewClient and Hello), then
// STARTTLS and the handshake on the raw connection, then a second go-smtp
// client over the TLS connection for EHLO and the rest. Nothing read
// before the handshake is kept (RFC 3207 4.2: the client discards what it
// knew of the server), which also defeats STARTTLS command injection.

// handshakeError is a STARTTLS that was offered but could not be used:
// refused, or a failed or stalled handshake.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "STARTTLS failed: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// TLSPolicy is how one connection uses TLS: the one place where that is
// decided (tlsFor), so that a policy source such as DANE or MTA-STS can
// make the decision stricter for a host.
type TLSPolicy struct {
	Mode   string      // "none", "opportunistic", "required" or "implicit"
	Config *tls.Config // for every mode but "none"
}

// tlsFor decides the TLS policy of a connection to tg for dest: the
// destination's mode (smarthost_tls or mx_tls), the hop's own settings
// over it, and a REQUIRETLS message's demands over both; for an MX host,
// pkg/tlspolicy's decision (withPolicy) over all of them.
func (t *Transport) tlsFor(ctx context.Context, tg target, dest Destination) (TLSPolicy, error) {
	mode, verify, roots := dest.TLS, t.o.TLSVerify, t.o.RootCAs
	if hp, ok := t.o.Hops[tg.hop]; ok && tg.hop != "" {
		if hp.TLS != "" && !(dest.VerifyTLS && hp.TLS != "implicit") {
			mode = hp.TLS
		}
		if hp.Verify != nil {
			verify = *hp.Verify
		}
		if hp.RootCAs != nil {
			roots = hp.RootCAs
		}
	}
	verify = dest.VerifyTLS || verify && (mode == "required" || mode == "implicit")
	p := TLSPolicy{Mode: mode, Config: &tls.Config{
		ServerName:         tg.host,
		RootCAs:            roots,
		InsecureSkipVerify: !verify,
		MinVersion:         tls.VersionTLS12,
	}}
	if dest.policy != nil {
		// pkg/tlspolicy decided this MX host (DANE, MTA-STS, a remembered
		// level): a decision that requires TLS is "required", so the
		// opportunistic retry in clear never runs; its config names the
		// MX host (SNI) and checks DANE in VerifyConnection.
		p = TLSPolicy{Mode: policyMode(*dest.policy), Config: dest.policy.TLSConfig()}
	}
	return p, nil
}

// open connects to tg and sets the session up: EHLO, TLS as the policy
// says, AUTH for relays when credentials are configured. Under
// opportunistic TLS, a server that offered STARTTLS but whose TLS failed
// still gets the mail in clear on a new connection, as Postfix's "may"
// does; that is logged as a downgrade and said in the reply recorded for
// each recipient, never silent.
func (t *Transport) open(ctx context.Context, tg target, dest Destination) (*conn, error) {
	pol, err := t.tlsFor(ctx, tg, dest)
	if err != nil {
		return nil, fmt.Errorf("%s[%s]: TLS policy: %w", tg.host, tg.addr, err)
	}
	cn, err := t.session(ctx, tg, pol)
	var he *handshakeError
	if err != nil && pol.Mode == "opportunistic" && errors.As(err, &he) {
		t.log().Event(maillog.Warning, "tls-downgrade", "host", tg.host, "addr", tg.addr, "err", err,
			"note", "delivering in clear: the server offered STARTTLS but TLS could not be set up (smarthost_tls/mx_tls = \"opportunistic\")")
		cn, err = t.session(ctx, tg, TLSPolicy{Mode: "none"})
		if err == nil {
			cn.note = "in clear: " + err2s(he)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s[%s]: %w", tg.host, tg.addr, err)
	}
	if creds := t.credentials(tg, dest); creds != nil {
		if err := t.auth(cn, creds); err != nil {
			cn.c.Close()
			return nil, fmt.Errorf("%s[%s]: %w", tg.host, tg.addr, err)
		}
	}
	return cn, nil
}

func err2s(err error) string { return oneLine(err.Error()) }

// session connects and says EHLO, with TLS as pol says.
func (t *Transport) session(ctx context.Context, tg target, pol TLSPolicy) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, t.o.ConnectTimeout)
	raw, err := t.o.Dial(dctx, "tcp", tg.addr)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			err = &TimeoutError{Stage: "connect", Limit: t.o.ConnectTimeout}
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	cmdTO := t.o.CommandTimeout
	cn := &conn{}
	if pol.Mode == "implicit" {
		tc, err := handshake(raw, pol.Config, cmdTO)
		if err != nil {
			raw.Close()
			return nil, err
		}
		cn.sc, cn.tls = newStageConn(tc), true
	} else {
		cn.sc = newStageConn(raw)
	}
	cn.sc.begin(stageGreeting, cmdTO)
	cn.c = smtp.NewClient(cn.sc)
	if err := cn.c.Hello(t.o.Hostname); err != nil {
		cn.c.Close()
		return nil, err
	}
	if pol.Mode != "required" && pol.Mode != "opportunistic" {
		return cn, nil
	}
	if ok, _ := cn.c.Extension("STARTTLS"); !ok {
		if pol.Mode == "required" {
			cn.c.Close()
			return nil, errors.New("TLS is required but STARTTLS is not offered")
		}
		return cn, nil // opportunistic: nothing offered, nothing downgraded
	}
	cn.sc.begin("STARTTLS", cmdTO)
	if _, err := cn.sc.Write([]byte("STARTTLS\r\n")); err != nil {
		raw.Close()
		return nil, err
	}
	if _, _, err := textproto.NewReader(bufio.NewReader(cn.sc)).ReadResponse(220); err != nil {
		raw.Close()
		var te *textproto.Error
		if errors.As(err, &te) {
			return nil, &handshakeError{fmt.Errorf("STARTTLS refused: %d %s", te.Code, oneLine(te.Msg))}
		}
		return nil, err
	}
	tc, err := handshake(raw, pol.Config, cmdTO)
	if err != nil {
		raw.Close()
		if pol.Mode == "required" {
			return nil, fmt.Errorf("TLS is required but failed: %w", err)
		}
		return nil, err
	}
	sc := newStageConn(tc)
	sc.pre = []byte("220 TLS\r\n") // the new client waits for a greeting
	sc.begin(stageGreeting, cmdTO)
	c := smtp.NewClient(sc)
	if err := c.Hello(t.o.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("after STARTTLS: %w", err)
	}
	return &conn{c: c, sc: sc, tls: true}, nil
}

// handshake runs a TLS client handshake on raw under a deadline.
func handshake(raw net.Conn, cfg *tls.Config, d time.Duration) (*tls.Conn, error) {
	raw.SetDeadline(time.Now().Add(d))
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, &handshakeError{&TimeoutError{Stage: stageHandshake, Limit: d}}
		}
		return nil, &handshakeError{err}
	}
	return tc, nil
}

// credentials are the AUTH user and password for tg, or nil.
func (t *Transport) credentials(tg target, dest Destination) *Credentials {
	if !dest.Relay {
		return nil
	}
	if hp, ok := t.o.Hops[tg.hop]; ok && hp.Auth != nil {
		if hp.Auth.User == "" {
			return nil // this route or smarthost says: no AUTH
		}
		return hp.Auth
	}
	if t.o.AuthUser == "" {
		return nil
	}
	return &Credentials{User: t.o.AuthUser, Pass: t.o.AuthPass}
}

// Credentials are a user and password for AUTH to a relay.
type Credentials struct{ User, Pass string }

func (t *Transport) auth(cn *conn, creds *Credentials) error {
	if !cn.tls {
		return errors.New("not sending the password in clear: no TLS (set smarthost_tls = \"required\")")
	}
	var mech sasl.Client
	switch {
	case cn.c.SupportsAuth("PLAIN"):
		mech = sasl.NewPlainClient("", creds.User, creds.Pass)
	case cn.c.SupportsAuth("LOGIN"):
		mech = sasl.NewLoginClient(creds.User, creds.Pass)
	default:
		return errors.New("offers no AUTH PLAIN or LOGIN")
	}
	cn.sc.begin("AUTH", t.o.CommandTimeout)
	if err := cn.c.Auth(mech); err != nil {
		return fmt.Errorf("AUTH failed: %w", err)
	}
	return nil
}

func (t *Transport) log() *maillog.Logger {
	if t.o.Log == nil {
		return maillog.Discard()
	}
	return t.o.Log
}
