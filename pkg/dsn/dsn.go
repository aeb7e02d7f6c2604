// Package dsn builds delivery status notifications (RFC 3464): the bounce
// qrun sends from <> to a message's envelope sender.
package dsn

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"smtp-bs/pkg/address"
	"strings"
	"time"
)

// MaxHeaders caps how much of the original message a bounce returns: its
// header section only, and at most this much of it.
const MaxHeaders = 64 << 10

// Failure is one recipient the report covers.
type Failure struct {
	Rcpt        string
	Reply       string // the remote's reply or our reason
	RemoteMTA   string // "" when the failure was local (expiry, routing)
	LastAttempt time.Time
}

// Report describes one bounce.
type Report struct {
	Hostname  string // the reporting MTA
	QueueID   string // of the original message
	MessageID string // for the bounce's own Message-ID
	Sender    string // the original envelope sender, who gets the report
	Arrival   time.Time
	Date      time.Time
	Action    string // "failed" or "delayed"
	Failures  []Failure
}

var enhanced = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// status extracts the RFC 3463 code from a reply, or makes one up from the
// action.
func status(reply, action string) string {
	if m := enhanced.FindString(reply); m != "" {
		return m
	}
	if action == "delayed" {
		return "4.0.0"
	}
	return "5.0.0"
}

// Build renders the report; original supplies the returned message, of
// which only the header section is read.
func Build(r Report, original io.Reader) []byte {
	var b strings.Builder
	boundary := randomBoundary()
	subject := "Undelivered Mail Returned to Sender"
	if r.Action == "delayed" {
		subject = "Delayed Mail (still being retried)"
	}
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", fmt.Sprintf("Mail Delivery System <MAILER-DAEMON@%s>", r.Hostname))
	hdr("To", "<"+r.Sender+">")
	hdr("Subject", subject)
	hdr("Date", r.Date.Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<%s@%s>", r.MessageID, r.Hostname))
	hdr("Auto-Submitted", "auto-replied")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", fmt.Sprintf("multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"", boundary))
	b.WriteString("\r\nThis is a MIME-encapsulated message.\r\n\r\n")

	fmt.Fprintf(&b, "--%s\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", boundary)
	fmt.Fprintf(&b, "This is the mail system at host %s.\r\n\r\n", r.Hostname)
	if r.Action == "delayed" {
		b.WriteString("Your message could not be delivered yet to the recipients below.\r\nIt is still being retried; you need not send it again.\r\n\r\n")
	} else {
		b.WriteString("Your message could not be delivered to one or more recipients.\r\nIt is attached below.\r\n\r\n")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "<%s>: %s\r\n", f.Rcpt, f.Reply)
	}
	b.WriteString("\r\n")

	fmt.Fprintf(&b, "--%s\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n", boundary)
	hdr("Reporting-MTA", "dns; "+r.Hostname)
	hdr("X-Smtp-Bs-Queue-ID", r.QueueID)
	if !r.Arrival.IsZero() {
		hdr("Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, f := range r.Failures {
		b.WriteString("\r\n")
		rcptType := "rfc822"
		if !address.IsASCII(f.Rcpt) {
			rcptType = "utf-8"
		}
		hdr("Final-Recipient", rcptType+"; "+f.Rcpt)
		hdr("Action", r.Action)
		hdr("Status", status(f.Reply, r.Action))
		if f.RemoteMTA != "" {
			hdr("Remote-MTA", "dns; "+f.RemoteMTA)
		}
		if code := smtpCode(f.Reply); code != "" {
			hdr("Diagnostic-Code", "smtp; "+code)
		} else {
			hdr("Diagnostic-Code", "x-unix; "+f.Reply)
		}
		if !f.LastAttempt.IsZero() {
			hdr("Last-Attempt-Date", f.LastAttempt.Format(time.RFC1123Z))
		}
	}
	b.WriteString("\r\n")

	fmt.Fprintf(&b, "--%s\r\nContent-Description: Undelivered message headers\r\nContent-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	if original != nil {
		b.WriteString(headerSection(original))
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
	return []byte(b.String())
}

// smtpCode returns the part of reply from its SMTP code on, if it has one.
var codeRe = regexp.MustCompile(`\b[245]\d\d\b.*`)

func smtpCode(reply string) string { return codeRe.FindString(reply) }

// headerSection reads the original's header section, up to MaxHeaders.
func headerSection(r io.Reader) string {
	br := bufio.NewReader(io.LimitReader(r, MaxHeaders))
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
		b.WriteString(line)
		if err != nil {
			b.WriteString("\r\n")
			break
		}
	}
	return b.String()
}

func randomBoundary() string {
	var buf [12]byte
	rand.Read(buf[:])
	return "=_smtp-bs_" + hex.EncodeToString(buf[:])
}
