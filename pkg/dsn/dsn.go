// Package dsn builds delivery status notifications (RFC 3464): the bounce
// qrun sends from <> to a message's envelope sender.
//
// UTF-8 (RFC 6533): a report whose fields would carry UTF-8 (a recipient
// such as zoë@example, a reply with UTF-8 in it) is a
// message/global-delivery-status when it can travel as one: its sender, or
// the original envelope, needed SMTPUTF8, so the path back speaks it.
// Otherwise the report stays a message/delivery-status, all ASCII, with
// UTF-8 written as \x{EB} escapes (utf-8-addr-xtext, RFC 6533 3).
package dsn

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"mime/quotedprintable"
	"regexp"
	"strings"
	"time"

	"smtp-bs/pkg/address"
)

// MaxHeaders caps how much of the original message a bounce returns: its
// header section only, and at most this much of it.
const MaxHeaders = 64 << 10

// MaxFull caps a message returned whole (RET=FULL); a larger one is
// returned as its header section only.
const MaxFull = 10 << 20

// Failure is one recipient the report covers.
type Failure struct {
	Rcpt        string
	ORcpt       string // ORCPT as given, "type;address"; "" when none
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
	Action    string // "failed", "delayed", or for NOTIFY=SUCCESS "delivered" or "relayed"
	Failures  []Failure
	// SMTPUTF8: the original envelope needed SMTPUTF8 (a UTF-8 address),
	// so its sender's side takes a global (UTF-8) report.
	SMTPUTF8 bool
	// EnvID and Ret are MAIL's ENVID and RET (RFC 3461): the first is
	// returned as Original-Envelope-Id, RET=FULL returns the whole message.
	EnvID string
	Ret   string
}

// global says whether r needs and may use the UTF-8 form of RFC 6533.
func (r Report) global() bool {
	if !r.SMTPUTF8 && address.IsASCII(r.Sender) {
		return false
	}
	for _, f := range r.Failures {
		if !address.IsASCII(f.Rcpt) || !address.IsASCII(f.Reply) || !address.IsASCII(f.RemoteMTA) {
			return true
		}
	}
	return false
}

// xtext writes s for an ASCII-only field: each character outside QCHAR
// (RFC 6533 3: printable ASCII but "+", "=" and the backslash) as \x{HEX}.
func xtext(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 0x20 && r < 0x7f && r != '+' && r != '=' && r != '\\' {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, "\\x{%X}", r)
	}
	return b.String()
}

// asciiText keeps s as is but writes non-ASCII characters as \x{HEX}, for
// the free text of a field that must be ASCII (Diagnostic-Code).
func asciiText(s string) string {
	if address.IsASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, "\\x{%X}", r)
	}
	return b.String()
}

var enhanced = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// status extracts the RFC 3463 code from a reply, or makes one up from the
// action.
func status(reply, action string) string {
	if m := enhanced.FindString(reply); m != "" {
		return m
	}
	switch action {
	case "delayed":
		return "4.0.0"
	case "delivered", "relayed":
		return "2.0.0"
	}
	return "5.0.0"
}

// Build renders the report; original supplies the returned message, of
// which only the header section is read.
func Build(r Report, original io.Reader) []byte {
	var b strings.Builder
	boundary := randomBoundary()
	subject := "Undelivered Mail Returned to Sender"
	switch r.Action {
	case "delayed":
		subject = "Delayed Mail (still being retried)"
	case "delivered", "relayed":
		subject = "Successful Mail Delivery Report"
	}
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", fmt.Sprintf("Mail Delivery System <MAILER-DAEMON@%s>", r.Hostname))
	hdr("To", "<"+r.Sender+">")
	hdr("Subject", subject)
	hdr("Date", r.Date.Format(time.RFC1123Z))
	hdr("Message-ID", fmt.Sprintf("<%s@%s>", r.MessageID, r.Hostname))
	hdr("Auto-Submitted", "auto-replied")
	hdr("MIME-Version", "1.0")
	global := r.global()
	statusType := "delivery-status"
	if global {
		statusType = "global-delivery-status"
	}
	hdr("Content-Type", fmt.Sprintf("multipart/report; report-type=%s;\r\n\tboundary=\"%s\"", statusType, boundary))
	b.WriteString("\r\nThis is a MIME-encapsulated message.\r\n\r\n")

	// RET=FULL: the whole message, if it is not too large.
	var full []byte
	if r.Ret == "FULL" && r.Action == "failed" && original != nil {
		b, _ := io.ReadAll(io.LimitReader(original, MaxFull+1))
		if len(b) <= MaxFull {
			full = b
		}
		original = bytes.NewReader(b)
	}
	var text strings.Builder
	fmt.Fprintf(&text, "This is the mail system at host %s.\r\n\r\n", r.Hostname)
	switch r.Action {
	case "delayed":
		text.WriteString("Your message could not be delivered yet to the recipients below.\r\nIt is still being retried; you need not send it again.\r\n\r\n")
	case "delivered":
		text.WriteString("Your message was delivered to the recipients below, as you asked to be told.\r\n\r\n")
	case "relayed":
		text.WriteString("Your message was passed on to the recipients below, to a host that does\r\nnot report delivery (no DSN): this is the last report you will get.\r\n\r\n")
	default:
		text.WriteString("Your message could not be delivered to one or more recipients.\r\n")
		if full != nil {
			text.WriteString("It is attached below.\r\n\r\n")
		} else {
			text.WriteString("Its header section is attached below; the message itself is not.\r\n\r\n")
		}
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&text, "<%s>: %s\r\n", f.Rcpt, f.Reply)
	}
	text.WriteString("\r\n")
	fmt.Fprintf(&b, "--%s\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n", boundary)
	if address.IsASCII(text.String()) {
		b.WriteString("\r\n" + text.String())
	} else {
		b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		w := quotedprintable.NewWriter(&b)
		io.WriteString(w, text.String())
		w.Close()
		b.WriteString("\r\n")
	}

	fmt.Fprintf(&b, "--%s\r\nContent-Description: Delivery report\r\nContent-Type: message/%s\r\n", boundary, statusType)
	if global {
		b.WriteString("Content-Transfer-Encoding: 8bit\r\n")
	}
	b.WriteString("\r\n")
	hdr("Reporting-MTA", "dns; "+r.Hostname)
	if r.EnvID != "" {
		hdr("Original-Envelope-Id", xtext(r.EnvID))
	}
	hdr("X-Smtp-Bs-Queue-ID", r.QueueID)
	if !r.Arrival.IsZero() {
		hdr("Arrival-Date", r.Arrival.Format(time.RFC1123Z))
	}
	for _, f := range r.Failures {
		b.WriteString("\r\n")
		text := func(s string) string { return s }
		if !global {
			text = asciiText
		}
		switch {
		case address.IsASCII(f.Rcpt):
			hdr("Final-Recipient", "rfc822; "+f.Rcpt)
		case global:
			hdr("Final-Recipient", "utf-8; "+f.Rcpt)
		default:
			hdr("Final-Recipient", "utf-8; "+xtext(f.Rcpt))
		}
		if typ, addr, ok := strings.Cut(f.ORcpt, ";"); ok && (global || address.IsASCII(addr)) {
			hdr("Original-Recipient", strings.ToLower(typ)+"; "+addr)
		}
		hdr("Action", r.Action)
		hdr("Status", status(f.Reply, r.Action))
		if f.RemoteMTA != "" {
			hdr("Remote-MTA", "dns; "+text(f.RemoteMTA))
		}
		if code := smtpCode(f.Reply); code != "" {
			hdr("Diagnostic-Code", "smtp; "+text(code))
		} else {
			hdr("Diagnostic-Code", "x-unix; "+text(f.Reply))
		}
		if !f.LastAttempt.IsZero() {
			hdr("Last-Attempt-Date", f.LastAttempt.Format(time.RFC1123Z))
		}
	}
	b.WriteString("\r\n")

	if full != nil {
		fullType := "message/rfc822"
		if global && !address.IsASCII(string(full)) {
			fullType = "message/global" // RFC 6532 3.7
		}
		fmt.Fprintf(&b, "--%s\r\nContent-Description: Undelivered message\r\nContent-Type: %s\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary, fullType)
		b.Write(full)
		if !bytes.HasSuffix(full, []byte("\r\n")) {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)
		return []byte(b.String())
	}
	var headers string
	if original != nil {
		headers = headerSection(original)
	}
	headersType := "text/rfc822-headers"
	if global && !address.IsASCII(headers) {
		headersType = "message/global-headers" // RFC 6533 6.4
	}
	desc := "Undelivered message headers"
	if r.Action == "delivered" || r.Action == "relayed" {
		desc = "Message headers"
	}
	fmt.Fprintf(&b, "--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary, desc, headersType)
	b.WriteString(headers)
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
