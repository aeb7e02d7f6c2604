package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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
		res, retry, err := t.attempt(ctx, tg, dest, env, rcpts, data)
		if err != nil {
			lastErr = err.Error()
			continue
		}
		if retry != "" {
			lastErr = retry // MAIL FROM got a 4xx: the next host may do better
			continue
		}
		return res
	}
	return all(spool.Deferred, lastErr)
}

// attempt runs the transaction at tg. A reply that our own sequence of
// commands on a reused connection may have caused (a 503, any refusal of
// MAIL, a connection that broke before the body) is no verdict on the
// message: the transaction is tried again once on a fresh connection.
func (t *Transport) attempt(ctx context.Context, tg target, dest Destination, env *spool.Envelope, rcpts []int, data io.Reader) ([]Result, string, error) {
	for fresh := false; ; fresh = true {
		cn, err := t.get(ctx, tg, dest, fresh)
		if err != nil {
			return nil, "", err
		}
		if s, ok := data.(io.Seeker); ok {
			s.Seek(0, io.SeekStart) // a fresh try after fit read it
		}
		tx := t.transaction(cn, tg, env, rcpts, data)
		// A connection whose server took offence at our sequence is not
		// offered to the next message.
		t.put(cn, tx.clean && !tx.sequence)
		if tx.sequence && cn.reused && !fresh {
			continue
		}
		for _, note := range []string{cn.note, tx.note} {
			for i := range tx.res {
				if note != "" && tx.res[i].Status == spool.Sent {
					tx.res[i].Reply += " (" + note + ")"
				}
			}
		}
		return tx.res, tx.retry, nil
	}
}

// txResult is what one transaction came to.
type txResult struct {
	res []Result
	// retry, when not empty: MAIL FROM failed temporarily and another host
	// should be tried.
	retry string
	// clean: every command got its reply and no transaction is open, so
	// the connection may carry the next one.
	clean bool
	// sequence: the transaction failed before the body went out, in a way
	// our own command sequence may have caused on a reused connection.
	sequence bool
	note     string // said in the reply of each recipient sent (a conversion)
}

// transaction sends one message over cn.
func (t *Transport) transaction(cn *conn, tg target, env *spool.Envelope, rcpts []int, data io.Reader) txResult {
	c, host := cn.c, tg.host
	cn.converted = ""
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
	opts := &smtp.MailOptions{Size: env.Size, UTF8: utf8, RequireTLS: env.RequireTLS, Return: smtp.DSNReturn(env.Ret)}
	if printable(env.EnvID) {
		opts.EnvelopeID = env.EnvID // go-smtp sends DSN parameters only to a hop that offers DSN
	}
	if !utf8 || cn.has("SMTPUTF8") {
		fitted, size, fail := t.fit(cn, host, env, data)
		if fail != "" {
			return txResult{res: all(spool.Failed, fail), clean: true}
		}
		data, opts.Size = fitted, size
	}
	cn.sc.begin("MAIL", t.o.CommandTimeout)
	if err := c.Mail(env.From, opts); err != nil {
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		if env.RequireTLS && !isReply && strings.Contains(err.Error(), "REQUIRETLS") {
			return txResult{res: all(spool.Failed, fmt.Sprintf("5.7.30 %s does not support REQUIRETLS, which the sender required", host)), clean: true}
		}
		if utf8 && !isReply {
			return txResult{res: all(spool.Failed, fmt.Sprintf("5.6.7 %s does not support SMTPUTF8, which this message needs", host)), clean: true}
		}
		st, reply := classify(err, host, "MAIL FROM")
		if st == spool.Deferred {
			return txResult{retry: reply, clean: isReply, sequence: true}
		}
		return txResult{res: all(st, reply), clean: isReply, sequence: true}
	}
	out := make([]Result, 0, len(rcpts))
	var accepted []int
	for _, r := range rcpts {
		cn.sc.begin("RCPT", t.o.CommandTimeout)
		if err := c.Rcpt(env.Rcpts[r], rcptDSN(env, r)); err != nil {
			st, reply := classify(err, host, "RCPT TO")
			out = append(out, Result{Rcpt: r, Status: st, Reply: reply})
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				// The connection broke: the rest cannot be asked.
				for _, rest := range rcpts[len(out):] {
					out = append(out, Result{Rcpt: rest, Status: spool.Deferred, Reply: reply})
				}
				return txResult{res: out, sequence: true}
			}
			if se.Code == 503 {
				return txResult{res: all(spool.Deferred, reply), sequence: true}
			}
			if se.Code == 421 {
				// The server is closing the connection: the rest get its reply.
				for _, rest := range rcpts[len(out):] {
					out = append(out, Result{Rcpt: rest, Status: spool.Deferred, Reply: reply})
				}
				return txResult{res: out}
			}
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		// MAIL is still open; go-smtp's RSET would forget the EHLO, so
		// the connection is not kept.
		return txResult{res: out}
	}
	tx := t.sendData(cn, host, data)
	onward := cn.has("DSN")
	for _, r := range accepted {
		out = append(out, Result{Rcpt: r, Status: tx.st, Reply: tx.reply, DSNOnward: onward})
	}
	return txResult{res: out, clean: tx.clean, sequence: tx.sequence, note: cn.converted}
}

type dataResult struct {
	st              spool.Status
	reply           string
	clean, sequence bool
}

// sendData sends the content.
func (t *Transport) sendData(cn *conn, host string, data io.Reader) dataResult {
	var se *smtp.SMTPError
	cn.sc.begin("DATA", t.o.CommandTimeout)
	w, err := cn.c.Data()
	if err != nil {
		st, reply := classify(err, host, "DATA")
		// Refused DATA leaves the transaction open: not kept.
		return dataResult{st: st, reply: reply, sequence: !errors.As(err, &se) || se.Code == 503}
	}
	cn.sc.beginBody(t.o.CommandTimeout)
	if _, err := io.Copy(w, data); err != nil {
		return dataResult{st: spool.Deferred, reply: fmt.Sprintf("sending to %s: %v", host, err)}
	}
	cn.sc.begin(stageFinal, t.o.DataTimeout)
	resp, err := w.CloseWithResponse()
	if err != nil {
		st, reply := classify(err, host, "end of DATA")
		return dataResult{st: st, reply: reply, clean: errors.As(err, &se)}
	}
	return dataResult{st: spool.Sent, reply: fmt.Sprintf("%s said: 250 %s", host, oneLine(resp.StatusText)), clean: true}
}

// classify turns an error into an outcome: a 5xx is permanent, everything
// else (4xx, network trouble) is worth another try. A 503 says our
// commands came in the wrong order: that is about us, never the message.
func classify(err error, host, stage string) (spool.Status, string) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		reply := fmt.Sprintf("%s said: %d", host, se.Code)
		if se.EnhancedCode != smtp.EnhancedCodeNotSet && se.EnhancedCode != smtp.NoEnhancedCode {
			reply += fmt.Sprintf(" %d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		reply += " " + oneLine(se.Message) + " (in reply to " + stage + ")"
		if se.Code >= 500 && se.Code < 600 && se.Code != 503 {
			return spool.Failed, reply
		}
		return spool.Deferred, reply
	}
	return spool.Deferred, fmt.Sprintf("%s: %s: %v", host, stage, err)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// rcptDSN passes a recipient's NOTIFY and ORCPT on (RFC 3461 5.2), as far
// as go-smtp will write them; nil when there are none.
func rcptDSN(env *spool.Envelope, r int) *smtp.RcptOptions {
	d, ok := env.DSN[env.Rcpts[r]]
	if !ok {
		return nil
	}
	o := &smtp.RcptOptions{}
	for _, n := range d.Notify {
		o.Notify = append(o.Notify, smtp.DSNNotify(n))
	}
	if typ, addr, ok := strings.Cut(d.ORcpt, ";"); ok {
		switch t := smtp.DSNAddressType(strings.ToUpper(typ)); {
		case t == smtp.DSNAddressTypeRFC822 && printable(addr), t == smtp.DSNAddressTypeUTF8:
			o.OriginalRecipientType, o.OriginalRecipient = t, addr
		}
	}
	return o
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
