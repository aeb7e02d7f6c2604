package session

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// headerFixer completes a submitted message's header as an MSA does (RFC
// 6409 8.1-8.3): Date:, Message-ID: and From: are added when missing,
// just before the empty line that ends the header (or at the end of a
// message that is all header). It sits after bodyCheck, so it sees only
// bytes already checked, and passes the body through untouched.
type headerFixer struct {
	w        io.Writer
	inHeader bool
	atStart  bool   // at the start of a header line
	name     []byte // the start of the current line, up to its ':'
	seen     map[string]bool
	add      func(missing []string) string // the fields to add
}

// fixedFields are the fields a submission must carry.
var fixedFields = []string{"date", "message-id", "from"}

func newHeaderFixer(w io.Writer, host, from string, now time.Time) *headerFixer {
	return &headerFixer{w: w, inHeader: true, atStart: true, seen: map[string]bool{}, add: func(missing []string) string {
		var b strings.Builder
		for _, f := range missing {
			switch f {
			case "date":
				fmt.Fprintf(&b, "Date: %s\r\n", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
			case "message-id":
				var r [8]byte
				rand.Read(r[:])
				fmt.Fprintf(&b, "Message-ID: <%s.%s@%s>\r\n", now.UTC().Format("20060102150405"), hex.EncodeToString(r[:]), host)
			case "from":
				if from != "" { // nothing to say for the null sender
					fmt.Fprintf(&b, "From: <%s>\r\n", from)
				}
			}
		}
		return b.String()
	}}
}

func (h *headerFixer) Write(p []byte) (int, error) {
	if !h.inHeader {
		return h.w.Write(p)
	}
	for i, c := range p {
		switch {
		case h.atStart && c == '\r':
			// The empty line: the header ends here.
			if _, err := h.w.Write(p[:i]); err != nil {
				return 0, err
			}
			h.inHeader = false
			if _, err := io.WriteString(h.w, h.missing()); err != nil {
				return 0, err
			}
			if _, err := h.w.Write(p[i:]); err != nil {
				return 0, err
			}
			return len(p), nil
		case c == '\n':
			h.atStart, h.name = true, h.name[:0]
		case h.atStart && (c == ' ' || c == '\t'):
			h.atStart = false // a continuation line
			h.name = append(h.name[:0], ':')
		default:
			if h.atStart {
				h.atStart = false
			}
			if len(h.name) < 12 && (len(h.name) == 0 || h.name[len(h.name)-1] != ':') {
				h.name = append(h.name, c)
				if c == ':' {
					h.seen[strings.ToLower(string(h.name[:len(h.name)-1]))] = true
				}
			}
		}
	}
	return h.w.Write(p)
}

// finish adds the missing fields to a message that is all header.
func (h *headerFixer) finish() error {
	if !h.inHeader {
		return nil
	}
	h.inHeader = false
	_, err := io.WriteString(h.w, h.missing())
	return err
}

func (h *headerFixer) missing() string {
	var m []string
	for _, f := range fixedFields {
		if !h.seen[f] {
			m = append(m, f)
		}
	}
	if len(m) == 0 {
		return ""
	}
	return h.add(m)
}
