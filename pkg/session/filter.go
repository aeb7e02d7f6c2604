package session

import (
	"bytes"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/emersion/go-smtp"
)

// maxCommandLine bounds a command line (RFC 5321 allows 512 octets plus
// extension parameters; Postfix's line_length_limit is 2048). Message
// content is not limited here: it is streamed, never held in memory.
const maxCommandLine = 2048

// sourceRouteMarker replaces a source-routed RCPT path, which go-smtp
// would otherwise strip silently, so that the session can refuse it.
const sourceRouteMarker = "source-route@source-route.invalid"

// filter sits between the socket and go-smtp's reader. It follows the
// command stream well enough to know where message content begins and
// ends (DATA up to CRLF.CRLF, BDAT by its count), and rewrites only
// command lines:
//   - RCPT TO:<Postmaster> (no domain) becomes <Postmaster@hostname>, which
//     go-smtp can parse, since RFC 5321 4.5.1 says it MUST be accepted;
//   - RCPT TO:<@a,@b:user@c> becomes a marker the session refuses;
//   - an overlong command line becomes smtp.ErrTooLongLine, which go-smtp
//     answers with 500 and a disconnect.
//
// It also notes whether the client said EHLO or HELO, for the Received
// header. After STARTTLS it steps aside: what follows is ciphertext.
type filter struct {
	r        io.Reader
	hostname string

	mode     int
	line     []byte // command line being assembled
	out      []byte // ready for the caller
	bdatLeft int64
	dstate   int // go-smtp's end-of-data state machine, mirrored
	// dotCR: a line of this message began ".\r" and went on with
	// something other than LF. go-smtp drops that CR without a trace
	// (its dataReader keeps the byte after it only), so the bare CR the
	// client sent never reaches the body check; Data takes it from here.
	// Atomic, as ehlo: under BDAT, Data runs on a goroutine of its own
	// while go-smtp's reads run the filter.
	dotCR atomic.Bool
	err   error
	buf   []byte

	ehlo atomic.Bool // the last greeting was EHLO (or LHLO)

	// After a DATA or STARTTLS line the filter holds back what follows
	// until go-smtp has answered it: only a 354 starts message content and
	// only a 220 starts TLS. go-smtp reads no further before answering,
	// because the line is already complete in its buffer.
	await    int // modeData, modePass or modeSASL while waiting; 0 otherwise
	held     []byte
	lastCode func() int
}

const (
	modeCommand = iota
	modeData
	modeBdat
	modePass
	modeSASL // the next line answers an AUTH challenge (334): not a command
)

// maxSASLLine bounds a line answering an AUTH challenge: RFC 4954 4 asks
// servers to take at least 12288 octets there.
const maxSASLLine = 12288

// awaitCode is the reply that starts the mode a filter awaits.
func awaitCode(mode int) int {
	switch mode {
	case modeData:
		return 354
	case modePass:
		return 220
	case modeSASL:
		return 334
	}
	return 0
}

// The states of go-smtp's dataReader, which decides where DATA ends.
const (
	dBeginLine = iota
	dDot
	dDotCR
	dCR
	dData
)

func newFilter(r io.Reader, hostname string, lastCode func() int) *filter {
	return &filter{r: r, hostname: hostname, buf: make([]byte, 16<<10), lastCode: lastCode}
}

func (f *filter) Read(p []byte) (int, error) {
	if len(f.out) == 0 && f.await != 0 {
		if f.lastCode() == awaitCode(f.await) {
			f.mode = f.await
			f.dotCR.Store(false)
		}
		f.await = 0
		held := f.held
		f.held = nil
		f.feed(held)
	}
	for len(f.out) == 0 {
		if f.err != nil {
			if len(f.line) > 0 && f.err == io.EOF {
				// Let go-smtp see the unterminated tail, as a command
				// (or as the answer to a challenge).
				if f.mode == modeSASL {
					f.out, f.line = f.line, nil
				} else {
					f.out, f.line = f.command(f.line), nil
				}
				continue
			}
			return 0, f.err
		}
		n, err := f.r.Read(f.buf)
		f.feed(f.buf[:n])
		if err != nil {
			f.err = err
		}
	}
	n := copy(p, f.out)
	f.out = f.out[n:]
	if len(f.out) == 0 {
		f.out = f.out[:0:0]
	}
	return n, nil
}

func (f *filter) feed(b []byte) {
	for len(b) > 0 {
		if f.await != 0 {
			f.held = append(f.held, b...)
			return
		}
		switch f.mode {
		case modePass:
			f.out = append(f.out, b...)
			return
		case modeBdat:
			n := int64(len(b))
			if n > f.bdatLeft {
				n = f.bdatLeft
			}
			f.out = append(f.out, b[:n]...)
			b = b[n:]
			f.bdatLeft -= n
			if f.bdatLeft == 0 {
				f.mode = modeCommand
			}
		case modeData:
			i := f.dataEnd(b)
			f.out = append(f.out, b[:i]...)
			b = b[i:]
		case modeSASL:
			// Passed as it is: a response is base64 or "*", and go-smtp
			// reads it with readLine, not as a command. Reading it as one
			// would let a response such as "BDAT 6" put the filter out
			// of step with go-smtp. Then the reply decides again.
			var ok bool
			if b, ok = f.lineIn(b, maxSASLLine); !ok {
				return
			}
			f.out = append(f.out, f.line...)
			f.line = f.line[:0]
			f.mode, f.await = modeCommand, modeSASL
		case modeCommand:
			var ok bool
			if b, ok = f.lineIn(b, maxCommandLine); !ok {
				return
			}
			f.out = append(f.out, f.command(f.line)...)
			f.line = f.line[:0]
		}
	}
}

// lineIn adds b up to its first LF to f.line and returns what follows, or
// false while the line is not complete. A line longer than limit (plus
// its CRLF) sets f.err instead: go-smtp then answers 500 and hangs up.
func (f *filter) lineIn(b []byte, limit int) ([]byte, bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		f.line = append(f.line, b...)
		if len(f.line) > limit {
			f.err, f.line = smtp.ErrTooLongLine, nil
		}
		return nil, false
	}
	f.line = append(f.line, b[:i+1]...)
	if len(f.line) > limit+2 {
		f.err, f.line = smtp.ErrTooLongLine, nil
		return nil, false
	}
	return b[i+1:], true
}

// dataEnd mirrors go-smtp's dataReader and returns how many bytes of b
// belong to the message including the terminating ".\r\n"; it switches back
// to command mode there.
func (f *filter) dataEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		if f.dstate == dData {
			// Mid-line only a CR changes the state: skip to the next one
			// many bytes at a time.
			j := bytes.IndexByte(b[i:], '\r')
			if j < 0 {
				return len(b)
			}
			i += j
		}
		c := b[i]
		switch f.dstate {
		case dBeginLine:
			switch c {
			case '.':
				f.dstate = dDot
			case '\r':
				f.dstate = dCR
			default:
				f.dstate = dData
			}
		case dDot:
			if c == '\r' {
				f.dstate = dDotCR
			} else {
				f.dstate = dData
			}
		case dDotCR:
			if c == '\n' {
				f.mode = modeCommand
				return i + 1
			}
			f.dotCR.Store(true)
			f.dstate = dData
		case dCR:
			if c == '\n' {
				f.dstate = dBeginLine
			} else {
				f.dstate = dData
			}
		case dData:
			if c == '\r' {
				f.dstate = dCR
			}
		}
	}
	return len(b)
}

// command inspects one complete command line and returns what go-smtp
// should see.
func (f *filter) command(line []byte) []byte {
	body := bytes.TrimRight(line, "\r\n")
	if hasControl(body) {
		// No command holds a bare CR, a NUL or another control character
		// (RFC 5321 2.3.8, 4.1.2), and go-smtp would echo them in its
		// reply ("Hello a<ESC>[2J", "Syntax errors, X<CR>Y command
		// unrecognized"): into the client's terminal or log, or breaking
		// its reading of replies. An empty line gets "500 5.5.2 Error:
		// bad syntax" and counts as a protocol error.
		return []byte("\r\n")
	}
	word, _, _ := bytes.Cut(body, []byte(" "))
	for _, c := range word {
		if c >= 0x80 {
			// A verb is ASCII. go-smtp upper-cases with Unicode rules, so
			// "\xc5\xbftarttls" (U+017F) was STARTTLS to it and not to
			// this filter: refuse it here so the two always agree.
			return []byte("\r\n")
		}
	}
	verb := body
	if len(verb) > 4 {
		verb = verb[:4]
	}
	switch string(bytes.ToUpper(verb)) {
	case "EHLO", "LHLO":
		f.ehlo.Store(true)
	case "HELO":
		f.ehlo.Store(false)
	case "DATA":
		if len(body) == 4 {
			f.await, f.dstate = modeData, dBeginLine
		}
	case "BDAT":
		// Exactly go-smtp's reading (parseCmd, then handleBdat): it reads
		// the chunk whenever the size parses, even when it refuses the
		// command (502, 552); on any other refusal the bytes that follow
		// are commands. A different reading would let the two disagree
		// about where commands are.
		f.dotCR.Store(false) // a BDAT message has no dot lines
		args := cmdArgs(body)
		if len(args) == 1 || len(args) == 2 && bytes.EqualFold(args[1], []byte("LAST")) {
			if n, err := strconv.ParseUint(string(args[0]), 10, 32); err == nil && n > 0 {
				f.mode, f.bdatLeft = modeBdat, int64(n)
			}
		}
	case "STAR":
		if bytes.HasPrefix(bytes.ToUpper(body), []byte("STARTTLS")) {
			f.await = modePass
		}
	case "AUTH":
		// Until go-smtp answers: a 334 makes the next line a response.
		f.await = modeSASL
	case "RCPT":
		return f.rcpt(line, body)
	}
	return line
}

// hasControl reports whether a command line holds a C0 control character
// other than TAB (go-smtp takes it for white space in places), or DEL.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

// cmdArgs splits a command's arguments as go-smtp's parseCmd does: the
// verb must be followed by exactly one space; nil when there are none.
func cmdArgs(body []byte) [][]byte {
	if len(body) < 6 || body[4] != ' ' {
		return nil
	}
	return bytes.Fields(body[5:])
}

// rcpt rewrites the two RCPT forms go-smtp mishandles. It finds the path
// where go-smtp does (parseCmd, handleRcpt, parsePath): after "RCPT ",
// optional white space, "TO:" in any case, optional white space, and an
// optional "<".
func (f *filter) rcpt(line, body []byte) []byte {
	if len(body) < 6 || body[4] != ' ' {
		return line
	}
	arg := bytes.TrimSpace(body[5:])
	if len(arg) < 3 || !bytes.EqualFold(arg[:3], []byte("TO:")) {
		return line
	}
	arg = bytes.TrimSpace(arg[3:])
	bracket := bytes.HasPrefix(arg, []byte("<"))
	if bracket {
		arg = arg[1:]
	}
	var repl string
	var rest []byte
	switch {
	case bytes.HasPrefix(arg, []byte("@")):
		// A source route: go-smtp would strip it silently. Parameters
		// do not matter, the session refuses the marker.
		repl = sourceRouteMarker
	case bracket:
		end := bytes.IndexByte(arg, '>')
		if end < 0 || !bytes.EqualFold(arg[:end], []byte("postmaster")) {
			return line
		}
		repl, rest = string(arg[:end])+"@"+f.hostname, arg[end+1:]
	default:
		return line
	}
	const prefix = "RCPT TO:"
	out := make([]byte, 0, len(line)+len(repl))
	out = append(out, prefix...)
	out = append(out, '<')
	out = append(out, repl...)
	out = append(out, '>')
	out = append(out, rest...)
	return append(out, "\r\n"...)
}
