package submit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
)

// Dialer opens the connection to the mail system; tests replace it.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Conn is an open SMTP session with the local mail system.
type Conn struct {
	addr   string
	c      *smtp.Client
	greet  *greetingConn
	closed bool
}

// ConnectOptions tune Connect.
type ConnectOptions struct {
	Dial     Dialer        // nil: net.Dialer
	Timeout  time.Duration // for the connection and each command; 0: 1 minute
	HeloName string        // our name in EHLO; "" is "localhost"
	Debug    io.Writer     // receives the SMTP dialogue (-v)
}

// Connect dials addr and says EHLO. Any failure is a temporary one (exit
// 75): whatever the reason the mail system cannot be reached, the message
// itself may be fine, and the caller keeps it.
func Connect(ctx context.Context, addr string, o ConnectOptions) (*Conn, error) {
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.Timeout}
		o.Dial = d.DialContext
	}
	if o.HeloName == "" {
		o.HeloName = "localhost"
	}
	nc, err := o.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, unreachable(addr, err)
	}
	g := &greetingConn{Conn: nc}
	c := smtp.NewClient(g)
	c.CommandTimeout = o.Timeout
	c.DebugWriter = o.Debug
	if err := c.Hello(o.HeloName); err != nil {
		c.Close()
		return nil, unreachable(addr, err)
	}
	return &Conn{addr: addr, c: c, greet: g}, nil
}

// unreachable is the error for a mail system that cannot take the message
// now: nothing was sent, try again later.
func unreachable(addr string, err error) error {
	return &Error{Code: ExTempFail, Msg: fmt.Sprintf("cannot hand the message to the mail system at %s: %s; it was not sent", addr, reason(err))}
}

// reason turns an error into the short text a person needs: the errno's
// words for a socket error ("connection refused"), the reply for an SMTP
// error.
func reason(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return replyText(se)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer in time"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection was closed"
	}
	return err.Error()
}

// replyText renders an SMTP reply the way the server sent it.
func replyText(se *smtp.SMTPError) string {
	msg := strings.ReplaceAll(se.Message, "\n", " ")
	if se.EnhancedCode != (smtp.EnhancedCode{}) && se.EnhancedCode != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], msg)
	}
	return fmt.Sprintf("%d %s", se.Code, msg)
}

// ServerName is the host name the mail system gave in its greeting
// ("220 mx.example.org ESMTP ..."), or "" when it gave none that looks
// like one. smtp-bs greets with its configured hostname, so a user who
// cannot read the config still qualifies addresses the way smtp-bs would.
func (c *Conn) ServerName() string {
	line := c.greet.first()
	if len(line) < 5 || !strings.HasPrefix(line, "220") || (line[3] != ' ' && line[3] != '-') {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimSpace(line[4:]), " ")
	if !validHostname(name) {
		return ""
	}
	return strings.TrimSuffix(name, ".")
}

// validHostname accepts letters, digits, '-' and '.', as a host name has.
func validHostname(s string) bool {
	if s == "" || len(s) > 255 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Refusal is a recipient the mail system refused for good.
type Refusal struct {
	Rcpt  string
	Reply *smtp.SMTPError
}

// Result is what happened to a message the mail system took.
type Result struct {
	Accepted []string
	Refused  []Refusal
	Reply    string // the reply to the end of DATA ("OK: queued as ...")
}

// Send hands the message over: MAIL, a RCPT per recipient, DATA. The
// rules that decide the exit code, and why:
//
//   - Any temporary failure (4xx, a lost connection) before the message is
//     accepted aborts the transaction (RSET): nothing was sent to anyone,
//     so the caller may retry the whole message without duplicates.
//   - A recipient refused for good (5xx) is reported and the others still
//     get the message, as sendmail does; the error names the refused
//     recipients and says the others got it.
//   - The sender or the message refused for good (5xx to MAIL or DATA):
//     nothing was sent.
//   - More recipients than one transaction takes (LIMITS RCPTMAX, or a
//     452 after some were accepted, RFC 5321 4.5.3.1.10): the message
//     goes to those accepted, then again in a new transaction to the
//     rest. A temporary failure in a later transaction is reported with
//     the recipients that did get the message (a retry of the whole
//     message sends it to them again: twice rather than never).
//
// On success with refusals, Send returns both the result and an *Error.
func (c *Conn) Send(from string, rcpts []string, msg *Message, utf8 bool) (*Result, error) {
	if utf8 {
		if ok, _ := c.c.Extension("SMTPUTF8"); !ok {
			c.quit()
			return nil, &Error{Code: ExUnavailable, Msg: fmt.Sprintf("the mail system at %s does not offer SMTPUTF8, which a non-ASCII address needs; the message was not sent", c.addr)}
		}
	}
	res := &Result{}
	batch := c.rcptMax()
	for rest := rcpts; len(rest) > 0; {
		n, err := c.transaction(from, rest[:min(len(rest), batch)], msg, utf8, res)
		if err != nil {
			var e *Error
			if len(res.Accepted) > 0 && errors.As(err, &e) {
				// Some got it in an earlier transaction: say who.
				e.Msg = strings.Replace(e.Msg, "the message was not sent", "the message was not sent to the rest", 1)
				e.Msg = strings.Replace(e.Msg, "; it was not sent", "; it was not sent to the rest", 1)
				e.Msg += fmt.Sprintf("\nsendmail: it was sent, in an earlier transaction, to %s", strings.Join(res.Accepted, ", "))
			}
			return nil, err
		}
		rest = rest[n:]
	}
	c.quit()
	if len(res.Accepted) == 0 {
		return res, refusedError(res.Refused, false)
	}
	if len(res.Refused) > 0 {
		return res, refusedError(res.Refused, true)
	}
	return res, nil
}

// rcptMax is how many recipients one transaction may have: the server's
// LIMITS RCPTMAX (RFC 9422), else no bound of ours.
func (c *Conn) rcptMax() int {
	if ok, p := c.c.Extension("LIMITS"); ok {
		for _, f := range strings.Fields(p) {
			if v, ok := strings.CutPrefix(strings.ToUpper(f), "RCPTMAX="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					return n
				}
			}
		}
	}
	return math.MaxInt
}

// transaction sends the message to as many of rcpts as the server takes in
// one transaction, adding to res, and returns how many of rcpts it dealt
// with (accepted or refused for good). None accepted: no DATA.
func (c *Conn) transaction(from string, rcpts []string, msg *Message, utf8 bool, res *Result) (int, error) {
	if err := c.c.Mail(from, &smtp.MailOptions{Size: msg.Size(), UTF8: utf8}); err != nil {
		return 0, c.fail(err, fmt.Sprintf("the mail system refused the sender <%s>", from), ExDataErr)
	}
	var accepted []string
	n := 0
	for _, r := range rcpts {
		err := c.c.Rcpt(r, nil)
		var se *smtp.SMTPError
		switch {
		case err == nil:
			accepted = append(accepted, r)
		case errors.As(err, &se) && se.Code >= 500 && se.Code < 600:
			res.Refused = append(res.Refused, Refusal{Rcpt: r, Reply: se})
		case errors.As(err, &se) && tooManyRcpts(se) && len(accepted) > 0:
			// Too many recipients for this transaction: the rest go
			// in the next one.
			return n, c.data(msg, accepted, res)
		default:
			return 0, c.fail(err, fmt.Sprintf("<%s>", r), 0)
		}
		n++
	}
	if len(accepted) == 0 {
		if err := c.c.Reset(); err != nil {
			return 0, c.fail(err, "the mail system", 0)
		}
		return n, nil
	}
	return n, c.data(msg, accepted, res)
}

// tooManyRcpts reports whether a reply to RCPT means "no more recipients
// in this transaction" (RFC 5321 4.5.3.1.10: 452, with 4.5.3 when the
// code is enhanced), and not a full mailbox (452 4.2.2) or a full disk
// (452 4.3.1), where sending to the others now would have a retry of the
// whole message send it to them again.
func tooManyRcpts(se *smtp.SMTPError) bool {
	return se.Code == 452 && (se.EnhancedCode == smtp.EnhancedCode{4, 5, 3} ||
		se.EnhancedCode == smtp.EnhancedCode{} || se.EnhancedCode == smtp.NoEnhancedCode)
}

// data sends the message to the accepted recipients of the transaction.
func (c *Conn) data(msg *Message, accepted []string, res *Result) error {
	w, err := c.c.Data()
	if err != nil {
		return c.fail(err, "the mail system refused the message", ExDataErr)
	}
	if _, err := msg.WriteTo(w); err != nil {
		c.c.Close()
		c.closed = true
		return unreachable(c.addr, err)
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return c.fail(err, "the mail system refused the message", ExDataErr)
	}
	res.Accepted = append(res.Accepted, accepted...)
	if res.Reply != "" {
		res.Reply += "; "
	}
	res.Reply += resp.StatusText
	return nil
}

// fail maps an error of a command to the exit code: 5xx to permanent (the
// message was not sent), anything else to 75 after aborting the
// transaction.
func (c *Conn) fail(err error, what string, permanent int) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.Code < 600 && permanent != 0 {
		c.quit()
		return &Error{Code: permanent, Msg: fmt.Sprintf("%s: %s; it was not sent", what, replyText(se))}
	}
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 {
		c.c.Reset()
		c.quit()
		return &Error{Code: ExTempFail, Msg: fmt.Sprintf("%s: %s; the message was not sent (try again later)", what, replyText(se))}
	}
	c.c.Close()
	c.closed = true
	return unreachable(c.addr, err)
}

// refusedError reports the recipients refused for good. X.1.x codes (bad
// mailbox, unknown user, bad domain) are EX_NOUSER (67); any other 5xx,
// such as relaying denied, is EX_UNAVAILABLE (69).
func refusedError(refused []Refusal, sentToOthers bool) error {
	code := ExUnavailable
	var b strings.Builder
	for i, r := range refused {
		if i > 0 {
			b.WriteString("\nsendmail: ")
		}
		fmt.Fprintf(&b, "<%s>: %s", r.Rcpt, replyText(r.Reply))
		if r.Reply.EnhancedCode[1] == 1 {
			code = ExNoUser
		}
	}
	if sentToOthers {
		b.WriteString("\nsendmail: the message was sent to the other recipients")
	} else {
		b.WriteString("\nsendmail: no recipient was accepted; the message was not sent")
	}
	return &Error{Code: code, Msg: b.String()}
}

// Close ends the session without a transaction (QUIT).
func (c *Conn) Close() { c.quit() }

func (c *Conn) quit() {
	if c.closed {
		return
	}
	c.closed = true
	if err := c.c.Quit(); err != nil {
		c.c.Close()
	}
}

// greetingConn remembers the first line the server sends (its greeting).
type greetingConn struct {
	net.Conn
	buf  []byte
	done bool
}

func (g *greetingConn) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if !g.done {
		g.buf = append(g.buf, p[:n]...)
		if i := bytes.IndexByte(g.buf, '\n'); i >= 0 {
			g.buf, g.done = g.buf[:i], true
		} else if len(g.buf) > 1024 {
			g.done = true
		}
	}
	return n, err
}

func (g *greetingConn) first() string { return strings.TrimRight(string(g.buf), "\r") }
