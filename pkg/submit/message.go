package submit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// MaxHeaderBytes bounds the header section, which is kept in memory (the
// body may spill to a temporary file).
const MaxHeaderBytes = 1 << 20

// memBody is how much body stays in memory before it spills to an unlinked
// temporary file, so a large message does not need as much memory.
const memBody = 1 << 20

// Field is one header field as read: its name, and the whole field with
// its continuation lines, each ending in CRLF.
type Field struct {
	Name string
	Raw  []byte
}

// Value returns the field body, unfolded, without the name and colon.
func (f Field) Value() string {
	v := string(f.Raw[bytes.IndexByte(f.Raw, ':')+1:])
	v = strings.ReplaceAll(v, "\r\n", "")
	return strings.TrimSpace(v)
}

// Message is the caller's message in SMTP form: every line ends in CRLF,
// no line holds a lone CR or LF. Headers are kept apart so that they can
// be read (-t), removed (Bcc:) and added to (From:, Date:, Message-ID:).
type Message struct {
	Header []Field
	// sep is set when the header section is followed by an empty line
	// (read or to be inserted before a body that followed the headers
	// without one).
	sep  bool
	body spill
}

// ReadOptions say how to read the input.
type ReadOptions struct {
	// IgnoreDots: a line holding only "." is data (-i). Without it, such a
	// line ends the input, as sendmail does without -i.
	IgnoreDots bool
	// MaxBytes bounds the whole input; 0 means no bound.
	MaxBytes int64
	// TempDir is where a large body spills ("" is os.TempDir()).
	TempDir string
	// TempFile, if set, gives the file a large body spills to instead
	// (opened, and unlinked, before the sandbox left no directory
	// writable).
	TempFile func() (*os.File, error)
}

// Read's errors are *Error values: ExDataErr for a message that is too
// big (MaxBytes) or whose header section is, ExIOErr when the input cannot
// be read, and ExTempFail when the temporary file cannot be written.

// Read reads a message from r, the way sendmail does:
//
//   - Line endings become CRLF: LF (as cron and scripts write), CRLF, and
//     a lone CR (a progress bar's carriage return) each end a line. SMTP
//     cannot carry a lone CR or LF, and smtp-bs refuses them.
//   - Without IgnoreDots, a line holding only "." ends the input; with it,
//     only the end of the input does.
//   - NUL bytes are dropped: SMTP text cannot carry them, smtp-bs refuses
//     a message holding one, and a job's stray NUL should not cost its
//     owner the whole mail.
//   - A leading "From " line (an mbox separator) is dropped; a first line
//     that reads "From " only once its NULs are gone is kept.
//   - The header section ends at the first empty line, or at the first
//     line that is neither a header field nor a continuation: then that
//     line starts the body and an empty line is put before it. Input that
//     does not start with a header field is all body.
func Read(r io.Reader, opt ReadOptions) (*Message, error) {
	m := &Message{body: spill{dir: opt.TempDir, open: opt.TempFile}}
	if opt.MaxBytes > 0 {
		r = io.LimitReader(r, opt.MaxBytes+1)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var total int64
	inHeader, first := true, true
	var headerBytes int
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		var line []byte
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole, bounded by MaxBytes.
			line = append([]byte(nil), chunk...)
			for errors.Is(err, bufio.ErrBufferFull) {
				chunk, err = br.ReadSlice('\n')
				line = append(line, chunk...)
				if opt.MaxBytes > 0 && total+int64(len(line)) > opt.MaxBytes {
					m.Close()
					return nil, tooBig(opt.MaxBytes)
				}
			}
		} else {
			line = chunk
		}
		if err != nil && err != io.EOF {
			m.Close()
			return nil, &Error{Code: ExIOErr, Msg: fmt.Sprintf("reading the message: %v; it was not sent", err)}
		}
		total += int64(len(line))
		if opt.MaxBytes > 0 && total > opt.MaxBytes {
			m.Close()
			return nil, tooBig(opt.MaxBytes)
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		// An mbox separator is "From " as written: dropping NULs must not
		// make one out of a first line that was not ("Fro\x00m ").
		mboxFrom := first && bytes.HasPrefix(line, []byte("From "))
		if bytes.IndexByte(line, 0) >= 0 {
			line = bytes.ReplaceAll(line, []byte{0}, nil)
		}
		if !opt.IgnoreDots && len(line) == 1 && line[0] == '.' {
			break
		}
		// What is left of CRs is lone: each ends a line.
		for _, l := range bytes.Split(line, []byte("\r")) {
			if first {
				first = false
				if mboxFrom {
					continue
				}
			}
			if inHeader {
				switch {
				case len(l) == 0:
					inHeader, m.sep = false, true
					continue
				case (l[0] == ' ' || l[0] == '\t') && len(m.Header) > 0:
					f := &m.Header[len(m.Header)-1]
					f.Raw = append(append(f.Raw, l...), '\r', '\n')
					headerBytes += len(l) + 2
				case fieldName(l) != "":
					m.Header = append(m.Header, Field{Name: fieldName(l), Raw: append(append([]byte(nil), l...), '\r', '\n')})
					headerBytes += len(l) + 2
				default:
					inHeader, m.sep = false, len(m.Header) > 0
				}
				if headerBytes > MaxHeaderBytes {
					m.Close()
					return nil, &Error{Code: ExDataErr, Msg: fmt.Sprintf("the header section is larger than %d bytes; the message was not sent", MaxHeaderBytes)}
				}
				if inHeader {
					continue
				}
			}
			// A body line longer than RFC 5322's 998 octets is broken
			// as Postfix's SMTP client breaks it (smtp_line_length_limit):
			// CRLF and a space are inserted, never inside a UTF-8
			// character. smtp-bs refuses lines over 64 KiB for good, and
			// cron output is mail that must go out.
			out = out[:0]
			for len(out)+len(l) > maxBodyLine {
				cut := maxBodyLine - len(out)
				for k := 0; k < 3 && cut > 1 && !utf8.RuneStart(l[cut]); k++ {
					cut--
				}
				out = append(append(out, l[:cut]...), '\r', '\n')
				if _, err := m.body.Write(out); err != nil {
					m.Close()
					return nil, &Error{Code: ExTempFail, Msg: err.Error() + "; the message was not sent"}
				}
				l = l[cut:]
				out = append(out[:0], ' ')
			}
			// l may share bufio's buffer: appending to it in place would
			// overwrite the next line.
			out = append(append(out, l...), '\r', '\n')
			if _, err := m.body.Write(out); err != nil {
				m.Close()
				return nil, &Error{Code: ExTempFail, Msg: err.Error() + "; the message was not sent"}
			}
		}
		if err == io.EOF {
			break
		}
	}
	return m, nil
}

// maxBodyLine is RFC 5322 2.1.1's limit on a line, without its CRLF.
const maxBodyLine = 998

func tooBig(max int64) error {
	return &Error{Code: ExDataErr, Msg: fmt.Sprintf("the message is larger than %d bytes (max_message_bytes); it was not sent", max)}
}

// fieldName returns the name of a header field line, or "" when l is not
// one. White space between the name and the colon is allowed, as RFC 5322
// 4.5 allows it (obs-optional) and sendmail and Postfix read it: "Bcc :"
// read as body text would show its addresses to every recipient.
func fieldName(l []byte) string {
	i := bytes.IndexByte(l, ':')
	if i <= 0 {
		return ""
	}
	name := bytes.TrimRight(l[:i], " \t")
	if len(name) == 0 {
		return ""
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return ""
		}
	}
	return string(name)
}

// Get returns the unfolded values of every field called name.
func (m *Message) Get(name string) []string {
	var vs []string
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value())
		}
	}
	return vs
}

// Has reports whether a field called name is present.
func (m *Message) Has(name string) bool {
	for _, f := range m.Header {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// Remove deletes every field called name.
func (m *Message) Remove(name string) {
	kept := m.Header[:0]
	for _, f := range m.Header {
		if !strings.EqualFold(f.Name, name) {
			kept = append(kept, f)
		}
	}
	m.Header = kept
}

// Add appends a field at the end of the header section. value must not
// hold line breaks.
func (m *Message) Add(name, value string) {
	value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
	m.Header = append(m.Header, Field{Name: name, Raw: []byte(name + ": " + value + "\r\n")})
}

// Size is the number of bytes WriteTo writes.
func (m *Message) Size() int64 {
	var n int64
	for _, f := range m.Header {
		n += int64(len(f.Raw))
	}
	if m.needSep() {
		n += 2
	}
	return n + m.body.n
}

func (m *Message) needSep() bool { return m.sep || m.body.n > 0 }

// WriteTo writes the message in SMTP form (CRLF, not dot-stuffed).
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, f := range m.Header {
		k, err := w.Write(f.Raw)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	if m.needSep() {
		k, err := io.WriteString(w, "\r\n")
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	r, err := m.body.reader()
	if err != nil {
		return n, err
	}
	k, err := io.Copy(w, r)
	return n + k, err
}

// Close releases the temporary file of a large body.
func (m *Message) Close() error { return m.body.close() }

// spill keeps the first memBody bytes in memory and the rest in an
// unlinked temporary file, which disappears when closed or when the
// process ends, whatever the way.
type spill struct {
	dir  string
	open func() (*os.File, error) // nil: a new file in dir
	mem  bytes.Buffer
	f    *os.File
	n    int64
}

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) > memBody {
		f, err := s.create()
		if err != nil {
			return 0, fmt.Errorf("a temporary file for the message: %w", err)
		}
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("a temporary file for the message: %w", err)
		}
		s.f = f
		s.mem = bytes.Buffer{}
	}
	s.n += int64(len(p))
	if s.f != nil {
		n, err := s.f.Write(p)
		if err != nil {
			err = fmt.Errorf("a temporary file for the message: %w", err)
		}
		return n, err
	}
	return s.mem.Write(p)
}

// create opens the unlinked temporary file.
func (s *spill) create() (*os.File, error) {
	if s.open != nil {
		return s.open()
	}
	f, err := os.CreateTemp(s.dir, "sendmail-")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return f, nil
}

func (s *spill) reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	return io.NewSectionReader(s.f, 0, s.n), nil
}

func (s *spill) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
