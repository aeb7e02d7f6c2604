package milter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	gomilter "github.com/emersion/go-milter"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/maillog"
)

// Envelope is the transaction as the milters may change it.
type Envelope struct {
	From  string // "" is <>
	Rcpts []string
}

// Result is what the milters made of a message.
type Result struct {
	// Verdict is final (Reject, TempFail, Discard) or Continue.
	Verdict Verdict
	// Envelope is the transaction after ChangeFrom, AddRcpt and DelRcpt.
	Envelope Envelope
	// Quarantine, when set, is why a milter wants the message held.
	Quarantine   string
	QuarantineBy string

	msg *message // the content; changed says whether it must be rewritten
}

// Changed reports whether the content differs from what was fed in: the
// caller must write WriteTo's output instead.
func (r *Result) Changed() bool { return r.msg != nil && r.msg.changed }

// WriteTo writes the content as the milters left it: the header fields,
// the empty line, the body. CRLF throughout.
func (r *Result) WriteTo(w io.Writer) (int64, error) {
	if r.msg == nil {
		return 0, errors.New("milter: no message")
	}
	return r.msg.writeTo(w)
}

// field is one header field: the name as written and the raw value after
// the colon, folds (CRLF) included, the final CRLF not.
type field struct{ name, value string }

// message is the content being filtered: the header in memory, the body
// either still the original's (a range of src) or a milter's replacement.
type message struct {
	fields  []field
	src     io.ReaderAt
	bodyOff int64
	bodyLen int64
	body    []byte // a replacement; nil: the original
	changed bool
}

func (m *message) bodyReader() io.Reader {
	if m.body != nil {
		return bytes.NewReader(m.body)
	}
	return io.NewSectionReader(m.src, m.bodyOff, m.bodyLen)
}

func (m *message) clone() *message {
	c := *m
	c.fields = append([]field(nil), m.fields...)
	return &c
}

func (m *message) writeTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var n int64
	for _, f := range m.fields {
		k, _ := bw.WriteString(f.name + ":" + f.value + "\r\n")
		n += int64(k)
	}
	k, _ := bw.WriteString("\r\n")
	n += int64(k)
	c, err := io.Copy(bw, m.bodyReader())
	n += c
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// parse splits src into header fields and body, as a milter expects them:
// the header ends at the empty line, or at the first line that is not a
// field (which then belongs to the body, as Postfix reads it).
func parse(src io.ReaderAt, size int64) (*message, error) {
	m := &message{src: src}
	br := bufio.NewReaderSize(io.NewSectionReader(src, 0, size), 64<<10)
	var off int64
	for {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("milter: read message: %w", err)
		}
		if line == "" {
			m.bodyOff = off
			break
		}
		if line == "\r\n" {
			m.bodyOff = off + 2
			break
		}
		text := strings.TrimSuffix(line, "\r\n")
		if line[0] == ' ' || line[0] == '\t' {
			if len(m.fields) == 0 {
				m.bodyOff = off
				break
			}
			m.fields[len(m.fields)-1].value += "\r\n" + text
		} else if name, value, ok := strings.Cut(text, ":"); ok && validName(name) {
			m.fields = append(m.fields, field{name: name, value: value})
		} else {
			m.bodyOff = off
			break
		}
		off += int64(len(line))
		if err == io.EOF {
			m.bodyOff = off
			break
		}
	}
	m.bodyLen = size - m.bodyOff
	return m, nil
}

// validName: RFC 5322 ftext, printable US-ASCII but the colon.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':' {
			return false
		}
	}
	return true
}

// Content shows the message to each milter in turn and applies what each
// asks for before the next one sees it. src holds the message as it would
// be spooled (our Received header first); queueID is macro i. The
// transaction ends here for the milters, whatever the outcome. The error
// is a local failure to read src.
func (s *Session) Content(src io.ReaderAt, size int64, queueID string, env Envelope) (*Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.abortOpen()
	res := &Result{Envelope: Envelope{From: env.From, Rcpts: append([]string(nil), env.Rcpts...)}}
	if s.discard.Kind == Discard {
		res.Verdict = s.discard
		return res, nil
	}
	if v, ok := s.downVerdict("eom"); ok {
		res.Verdict = v
		return res, nil
	}
	msg, err := parse(src, size)
	if err != nil {
		return nil, err
	}
	res.msg = msg
	for _, f := range s.fs {
		if !f.active() || !f.open {
			continue
		}
		mods, v := s.feed(f, res.msg, queueID)
		f.open = false
		if v.Final() {
			res.Verdict = v
			return res, nil
		}
		if len(mods) == 0 {
			continue
		}
		next, err := apply(res, mods, f.lead)
		if err != nil {
			if v := s.fail(f, "eom", err); v.Final() {
				res.Verdict = v
				return res, nil
			}
			continue
		}
		s.log.Event(maillog.Info, "milter", "id", queueID, "milter", f.cfg.Name, "result", "modified", "changes", summary(mods))
		for _, m := range mods {
			if m.Code == gomilter.ActQuarantine {
				next.QuarantineBy = f.cfg.Name
			}
		}
		*res = *next
	}
	return res, nil
}

// feed sends one milter the header, the body and the end of the message,
// and returns its modifications and verdict.
func (s *Session) feed(f *filter, msg *message, queueID string) ([]gomilter.ModifyAction, Verdict) {
	cs := f.cs
	for _, fl := range msg.fields {
		value := fl.value
		if !f.lead {
			value = strings.TrimLeft(value, " \t")
		}
		// Folded lines reach milters with LF alone, as from Sendmail and
		// Postfix; OpenDKIM puts the CR back.
		act, err := cs.HeaderField(fl.name, strings.ReplaceAll(value, "\r\n", "\n"))
		if v := s.verdict(f, "header", act, err); v.Kind != Continue {
			return nil, v
		}
	}
	if cs.ProtocolOpts&gomilter.OptNoEOH == 0 {
		if err := cs.Macros(gomilter.CodeEOH, "i", queueID); err != nil {
			return nil, s.fail(f, "eoh", err)
		}
	}
	act, err := cs.HeaderEnd()
	if v := s.verdict(f, "eoh", act, err); v.Kind != Continue {
		return nil, v
	}
	if cs.ProtocolOpts&gomilter.OptNoBody == 0 {
		r := msg.bodyReader()
		buf := make([]byte, gomilter.MaxBodyChunk)
		for {
			n, rerr := io.ReadFull(r, buf)
			if n > 0 {
				act, err := cs.BodyChunk(buf[:n])
				if err == nil && act.Code == gomilter.ActSkip {
					break
				}
				if v := s.verdict(f, "body", act, err); v.Kind != Continue {
					return nil, v
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				// Our own file failed us: not the milter's fault, but the
				// message cannot be judged.
				return nil, Verdict{Kind: TempFail, Milter: f.cfg.Name, Stage: "body", Down: true}
			}
		}
	}
	if err := cs.Macros(gomilter.CodeEOB, "i", queueID); err != nil {
		return nil, s.fail(f, "eom", err)
	}
	mods, act, err := cs.End()
	v := s.verdict(f, "eom", act, err)
	if v.Kind != Continue && v.Kind != Accept {
		return nil, v
	}
	return mods, v
}

// apply makes the changes one milter asked for, on a copy: a milter whose
// changes do not make sense changes nothing.
func apply(res *Result, mods []gomilter.ModifyAction, lead bool) (*Result, error) {
	next := *res
	next.Envelope.Rcpts = append([]string(nil), res.Envelope.Rcpts...)
	msg := res.msg.clone()
	next.msg = msg
	var repl []byte
	replaced := false
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActAddHeader, gomilter.ActChangeHeader, gomilter.ActInsertHeader:
			if !validName(m.HeaderName) {
				return nil, fmt.Errorf("header name %q is not valid", m.HeaderName)
			}
			value, err := headerValue(m.HeaderValue, lead)
			if err != nil {
				return nil, fmt.Errorf("header %s: %w", m.HeaderName, err)
			}
			if err := msg.editHeader(m.Code, int(m.HeaderIndex), m.HeaderName, value, m.HeaderValue == ""); err != nil {
				return nil, err
			}
			msg.changed = true
		case gomilter.ActChangeFrom:
			from, err := envelopeAddr(m.From, true)
			if err != nil {
				return nil, fmt.Errorf("change sender: %w", err)
			}
			next.Envelope.From = from
		case gomilter.ActAddRcpt:
			rcpt, err := envelopeAddr(m.Rcpt, false)
			if err != nil {
				return nil, fmt.Errorf("add recipient: %w", err)
			}
			if !contains(next.Envelope.Rcpts, rcpt) {
				next.Envelope.Rcpts = append(next.Envelope.Rcpts, rcpt)
			}
		case gomilter.ActDelRcpt:
			rcpt := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(m.Rcpt), "<"), ">")
			kept := next.Envelope.Rcpts[:0]
			for _, r := range next.Envelope.Rcpts {
				if !strings.EqualFold(r, rcpt) {
					kept = append(kept, r)
				}
			}
			next.Envelope.Rcpts = kept
		case gomilter.ActReplBody:
			// A body comes in chunks, one packet each.
			repl = append(repl, m.Body...)
			replaced = true
		case gomilter.ActQuarantine:
			next.Quarantine = strings.TrimSpace(m.Reason)
			if next.Quarantine == "" {
				next.Quarantine = "quarantined by a milter"
			}
		default:
			return nil, fmt.Errorf("unknown modification %q", rune(m.Code))
		}
	}
	if replaced {
		msg.body = crlf(repl)
		msg.changed = true
	}
	return &next, nil
}

// editHeader applies smfi_addheader, smfi_chgheader and smfi_insheader.
// Field 0 is our Received header: left as it is, and kept on top.
func (m *message) editHeader(code gomilter.ModifyActCode, index int, name, value string, empty bool) error {
	switch code {
	case gomilter.ActAddHeader:
		m.fields = append(m.fields, field{name, value})
	case gomilter.ActInsertHeader:
		at := min(max(index, 1), len(m.fields))
		m.fields = append(m.fields[:at], append([]field{{name, value}}, m.fields[at:]...)...)
	case gomilter.ActChangeHeader:
		// index counts the fields of that name from 1; past the last one
		// a value is added (smfi_chgheader), an empty one changes nothing.
		n := 0
		for i := range m.fields {
			if !strings.EqualFold(m.fields[i].name, name) {
				continue
			}
			if n++; n != index {
				continue
			}
			if i == 0 {
				return nil // ours
			}
			if empty {
				m.fields = append(m.fields[:i], m.fields[i+1:]...)
			} else {
				m.fields[i] = field{name, value}
			}
			return nil
		}
		if !empty {
			m.fields = append(m.fields, field{name, value})
		}
	}
	return nil
}

// headerValue turns a milter's value (lines joined by LF, as milters
// write them) into our raw form: CRLF folds, and the space after the colon
// unless the milter writes it itself (SMFIP_HDR_LEADSPC). A line break not
// followed by white space would start a new field: refused.
func headerValue(v string, lead bool) (string, error) {
	if strings.ContainsRune(v, 0) {
		return "", errors.New("value holds NUL")
	}
	v = strings.ReplaceAll(v, "\r\n", "\n")
	v = strings.ReplaceAll(v, "\r", "\n")
	lines := strings.Split(v, "\n")
	for _, l := range lines[1:] {
		if l == "" || (l[0] != ' ' && l[0] != '\t') {
			return "", errors.New("a folded line does not start with white space")
		}
	}
	v = strings.Join(lines, "\r\n")
	if !lead && v != "" {
		v = " " + v
	}
	return v, nil
}

// envelopeAddr takes "<addr>" or "addr" from a milter and checks it as we
// check what clients send; "<>" only where null is allowed (the sender).
func envelopeAddr(s string, nullOK bool) (string, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if s == "" {
		if nullOK {
			return "", nil
		}
		return "", errors.New("empty address")
	}
	a, err := address.Check(s)
	if err != nil {
		return "", err
	}
	return a.String(), nil
}

// crlf makes every line end in CRLF, whatever the milter wrote (go-milter
// servers send LF alone, as Postfix wants them).
func crlf(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32+2)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// summary names a milter's changes for the log: "add-header:DKIM-Signature
// rcpt-add:<a@b>".
func summary(mods []gomilter.ModifyAction) string {
	var parts []string
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActAddHeader:
			parts = append(parts, "add-header:"+m.HeaderName)
		case gomilter.ActInsertHeader:
			parts = append(parts, "insert-header:"+m.HeaderName)
		case gomilter.ActChangeHeader:
			if m.HeaderValue == "" {
				parts = append(parts, "delete-header:"+m.HeaderName)
			} else {
				parts = append(parts, "change-header:"+m.HeaderName)
			}
		case gomilter.ActChangeFrom:
			parts = append(parts, "change-from:"+m.From)
		case gomilter.ActAddRcpt:
			parts = append(parts, "add-rcpt:"+m.Rcpt)
		case gomilter.ActDelRcpt:
			parts = append(parts, "delete-rcpt:"+m.Rcpt)
		case gomilter.ActReplBody:
			if len(parts) == 0 || parts[len(parts)-1] != "replace-body" {
				parts = append(parts, "replace-body")
			}
		case gomilter.ActQuarantine:
			parts = append(parts, "quarantine")
		}
	}
	return strings.Join(parts, " ")
}
