package mailbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// DeliverLMTP hands one message for rcpts to an LMTP server ("unix:/path"
// or "host:port") and returns one error per recipient (nil: delivered),
// as LMTP answers per recipient after the data.
func DeliverLMTP(ctx context.Context, server, hostname, from string, rcpts []string, utf8 bool, size int64, msg io.Reader, timeout time.Duration) ([]error, error) {
	network, addr := "tcp", server
	if strings.HasPrefix(server, "unix:") {
		network, addr = "unix", strings.TrimPrefix(server, "unix:")
	}
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, temp("LMTP %s: %w", server, err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if timeout > 0 {
		c.CommandTimeout, c.SubmissionTimeout = timeout, 2*timeout
	}
	if err := c.Hello(hostname); err != nil {
		return nil, lmtpErr(server, err)
	}
	if ok, _ := c.Extension("SMTPUTF8"); utf8 && !ok {
		// As on the SMTP path: this cannot get better by waiting.
		return nil, fmt.Errorf("5.6.7 LMTP %s does not support SMTPUTF8, which this message needs", server)
	}
	if err := c.Mail(from, &smtp.MailOptions{UTF8: utf8, Size: size}); err != nil {
		return nil, lmtpErr(server, err)
	}
	out := make([]error, len(rcpts))
	var accepted []int
	for i, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			out[i] = lmtpErr(server, err)
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				return nil, out[i]
			}
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		c.Quit()
		return out, nil
	}
	w, err := c.Data()
	if err != nil {
		return nil, lmtpErr(server, err)
	}
	if _, err := io.Copy(w, msg); err != nil {
		return nil, temp("LMTP %s: %w", server, err)
	}
	resp, err := w.CloseWithLMTPResponse()
	var perRcpt smtp.LMTPDataError
	errors.As(err, &perRcpt)
	for _, i := range accepted {
		switch e, bad := perRcpt[rcpts[i]]; {
		case bad:
			out[i] = lmtpErr(server, e)
		case resp[rcpts[i]] == nil:
			// No answer for this one: the connection broke.
			out[i] = temp("LMTP %s: no reply for <%s>: %v", server, rcpts[i], err)
		}
	}
	c.Quit()
	return out, nil
}

func lmtpErr(server string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		msg := fmt.Sprintf("LMTP %s said: %d %d.%d.%d %s", server, se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], se.Message)
		if se.Code >= 500 {
			return errors.New(msg)
		}
		return &Temp{Err: errors.New(msg)}
	}
	return temp("LMTP %s: %w", server, err)
}
