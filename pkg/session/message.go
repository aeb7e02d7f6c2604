package session

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// errCheckWrite marks a failure to write to the spool (not the client's fault).
var errCheckWrite = errors.New("session: spool write failed")

// bodyCheck passes message content to the spool and refuses, as Postfix
// and chasquid do, content that could be read two ways: a CR or LF that is
// not part of CRLF (the stuff of SMTP smuggling) and NUL. It also counts
// Received headers to catch mail loops.
type bodyCheck struct {
	w           io.Writer
	maxReceived int

	prevCR     bool
	lineStart  bool
	inHeader   bool
	lineLen    int    // bytes seen of the current header line
	lineHead   []byte // its first bytes, enough to recognise "Received:"
	received   int
	terminated bool
}

func newBodyCheck(w io.Writer, maxReceived int) *bodyCheck {
	return &bodyCheck{w: w, maxReceived: maxReceived, lineStart: true, inHeader: true, lineHead: make([]byte, 0, 9)}
}

func (c *bodyCheck) Write(p []byte) (int, error) {
	if !c.inHeader {
		if err := c.body(p); err != nil {
			return 0, err
		}
		if _, err := c.w.Write(p); err != nil {
			return 0, fmt.Errorf("%w: %w", errCheckWrite, err)
		}
		return len(p), nil
	}
	for _, ch := range p {
		if c.prevCR && ch != '\n' {
			return 0, errBareEOL
		}
		switch ch {
		case 0:
			return 0, errNUL
		case '\n':
			if !c.prevCR {
				return 0, errBareEOL
			}
			if c.inHeader {
				if c.lineLen == 1 { // only the CR: the empty line ending the header
					c.inHeader = false
				}
				if len(c.lineHead) == 9 && strings.EqualFold(string(c.lineHead), "received:") {
					c.received++
					if c.received >= c.maxReceived {
						return 0, errLoop
					}
				}
				c.lineLen, c.lineHead = 0, c.lineHead[:0]
			}
			c.prevCR = false
			continue
		case '\r':
			c.prevCR = true
		default:
			c.prevCR = false
		}
		if c.inHeader {
			if c.lineLen < 9 {
				c.lineHead = append(c.lineHead, ch)
			}
			c.lineLen++
		}
	}
	if _, err := c.w.Write(p); err != nil {
		return 0, fmt.Errorf("%w: %w", errCheckWrite, err)
	}
	return len(p), nil
}

// body checks content after the header: the same rules as Write's byte
// loop, found with bytes.IndexByte, which runs many bytes at a time (a big
// message is mostly body).
func (c *bodyCheck) body(p []byte) *smtp.SMTPError {
	// The first fault decides the reply, as in the byte loop: a NUL
	// before any bad line ending is errNUL, one after it errBareEOL.
	nul := bytes.IndexByte(p, 0)
	bad := func(at int) *smtp.SMTPError {
		if nul >= 0 && nul < at {
			return errNUL
		}
		return errBareEOL
	}
	start := 0
	if c.prevCR {
		if len(p) == 0 {
			return nil
		}
		if p[0] != '\n' {
			return errBareEOL // the CR before p is the first fault
		}
		c.prevCR = false
		start = 1
	}
	for {
		i := bytes.IndexByte(p[start:], '\n')
		if i < 0 {
			break
		}
		i += start
		// A line holds no CR but the one of its CRLF: a CR inside it is a
		// fault at the byte after it, which comes before the line's end.
		if i > start {
			if k := bytes.IndexByte(p[start:i-1], '\r'); k >= 0 {
				return bad(start + k + 1)
			}
		}
		if i == start || p[i-1] != '\r' {
			return bad(i)
		}
		start = i + 1
	}
	if k := bytes.IndexByte(p[start:], '\r'); k >= 0 {
		if start+k != len(p)-1 {
			return bad(start + k + 1)
		}
		c.prevCR = true
	}
	if nul >= 0 {
		return errNUL
	}
	return nil
}

// finish checks the end of the content: a trailing lone CR is bare too.
func (c *bodyCheck) finish() *smtp.SMTPError {
	if c.prevCR {
		return errBareEOL
	}
	return nil
}

// receivedHeader is the trace field of RFC 5321 4.4, folded. using
// describes the TLS in use ("" for none) and user is the authenticated
// user ("" for none); both become comments, as Postfix writes them.
func receivedHeader(helo string, client Client, host, proto, id string, rcpts []string, t time.Time, using, user string) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(sanitizeHelo(helo))
	if client.Local || !client.Addr.IsValid() {
		b.WriteString(" (local submission)")
	} else if client.Addr.Is4() {
		fmt.Fprintf(&b, " ([%s])", client.Addr)
	} else {
		fmt.Fprintf(&b, " ([IPv6:%s])", client.Addr)
	}
	if using != "" {
		fmt.Fprintf(&b, "\r\n\t(using %s)", using)
	}
	if user != "" {
		fmt.Fprintf(&b, "\r\n\t(Authenticated sender: %s)", sanitizeHelo(user))
	}
	fmt.Fprintf(&b, "\r\n\tby %s (smtp-bs) with %s id %s", host, proto, id)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0])
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", t.Format(time.RFC1123Z))
	return b.String()
}

// sanitizeHelo keeps the client's HELO argument from breaking the header
// or the envelope file: printable ASCII without parentheses, bounded.
func sanitizeHelo(s string) string {
	if s == "" {
		return "unknown"
	}
	if len(s) > 255 {
		s = s[:255]
	}
	// Besides controls, spaces and non-ASCII: what would end the name
	// or the comment it may sit in, and ";", which parsers of Received
	// fields take for the start of the date.
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()\;"<>`, r) {
			return '_'
		}
		return r
	}, s)
}
