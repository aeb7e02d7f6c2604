// Package delivery hands queued messages to their next hop and reports
// each recipient's outcome: sent, deferred (try again) or failed (bounce).
//
// The runner depends only on the Deliverer interface; Smarthost is the
// implementation that relays everything through one SMTP server with
// go-smtp's client, one transaction per message, RCPT by RCPT so that every
// recipient keeps its own reply.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/spool"
)

// Result is one recipient's outcome.
type Result struct {
	Rcpt   int          // index into the envelope's recipients
	Status spool.Status // Sent, Deferred or Failed
	Reply  string       // what the remote said, or why we could not ask
}

// Deliverer delivers env's recipients rcpts (indices into env.Rcpts) with
// content data. It returns one Result per recipient asked for.
type Deliverer interface {
	Deliver(ctx context.Context, env *spool.Envelope, rcpts []int, data io.Reader) []Result
}

// Smarthost relays every message through one SMTP server.
type Smarthost struct {
	Addr           string // host:port; "" defers everything with a clear reason
	Hostname       string // our EHLO name
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	// Dial is the seam tests use to fail or redirect connections.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (s *Smarthost) dial(ctx context.Context) (net.Conn, error) {
	if s.Dial != nil {
		return s.Dial(ctx, "tcp", s.Addr)
	}
	d := net.Dialer{Timeout: s.ConnectTimeout}
	return d.DialContext(ctx, "tcp", s.Addr)
}

// Deliver runs one SMTP transaction for the message.
func (s *Smarthost) Deliver(ctx context.Context, env *spool.Envelope, rcpts []int, data io.Reader) []Result {
	all := func(st spool.Status, reply string) []Result {
		out := make([]Result, len(rcpts))
		for i, r := range rcpts {
			out[i] = Result{Rcpt: r, Status: st, Reply: reply}
		}
		return out
	}
	if s.Addr == "" {
		return all(spool.Deferred, "no route: [delivery] smarthost is not set")
	}
	conn, err := s.dial(ctx)
	if err != nil {
		return all(spool.Deferred, fmt.Sprintf("connect to %s: %v", s.Addr, err))
	}
	c := smtp.NewClient(conn)
	defer c.Close()
	if s.CommandTimeout > 0 {
		c.CommandTimeout = s.CommandTimeout
		c.SubmissionTimeout = 2 * s.CommandTimeout
	}
	if err := c.Hello(s.Hostname); err != nil {
		return all(classify(err, s.Addr, "EHLO"))
	}
	opts := &smtp.MailOptions{Size: env.Size, UTF8: env.UTF8}
	if err := c.Mail(env.From, opts); err != nil {
		var se *smtp.SMTPError
		if env.UTF8 && !errors.As(err, &se) {
			return all(spool.Failed, fmt.Sprintf("%s does not support SMTPUTF8, which this message needs (5.6.7)", s.Addr))
		}
		return all(classify(err, s.Addr, "MAIL FROM"))
	}
	out := make([]Result, 0, len(rcpts))
	var accepted []int
	for _, r := range rcpts {
		if err := c.Rcpt(env.Rcpts[r], nil); err != nil {
			st, reply := classify(err, s.Addr, "RCPT TO")
			out = append(out, Result{Rcpt: r, Status: st, Reply: reply})
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				// The connection broke: the rest cannot be asked.
				for _, rest := range rcpts[len(out):] {
					out = append(out, Result{Rcpt: rest, Status: spool.Deferred, Reply: reply})
				}
				return out
			}
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		c.Quit()
		return out
	}
	st, reply := s.data(c, data)
	for _, r := range accepted {
		out = append(out, Result{Rcpt: r, Status: st, Reply: reply})
	}
	c.Quit()
	return out
}

func (s *Smarthost) data(c *smtp.Client, data io.Reader) (spool.Status, string) {
	w, err := c.Data()
	if err != nil {
		return classify(err, s.Addr, "DATA")
	}
	if _, err := io.Copy(w, data); err != nil {
		w.Close()
		return spool.Deferred, fmt.Sprintf("sending to %s: %v", s.Addr, err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return classify(err, s.Addr, "end of DATA")
	}
	return spool.Sent, fmt.Sprintf("%s said: 250 %s", s.Addr, oneLine(resp.StatusText))
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
