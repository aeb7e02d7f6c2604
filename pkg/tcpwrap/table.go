package tcpwrap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// bufLen is BUFLEN in hosts_access.c, the size of the buffer one logical
// rule (continuation lines joined) must fit in, newline and NUL included.
const bufLen = 2048

type tableKind int

const (
	tableNoMatch tableKind = iota // no rule matched
	tableMatch                    // a rule matched; its options ran without deciding
	tableError                    // the file could not be read to its end
	tableJump                     // an option (or an error in one) decided
)

// tableResult is what scanning one rule file found.
type tableResult struct {
	kind     tableKind
	allow    bool // for tableJump
	file     string
	line     int
	reason   string
	env      map[string]string
	severity string
	sevValue int
}

// hostsAccess is hosts_access(): the allow file, then the deny file, then
// allow. A file that cannot be read to its end counts as no match in the
// allow file and as a match in the deny file, as in Debian's libwrap.
func (c *checker) hostsAccess() Verdict {
	a := c.tableMatch(c.opts.AllowFile)
	if a.kind == tableJump || a.kind == tableMatch {
		return a.verdict(true)
	}
	d := c.tableMatch(c.opts.DenyFile)
	switch d.kind {
	case tableJump, tableMatch, tableError:
		return d.verdict(false)
	}
	v := Verdict{Allow: true, Reason: "no rule matched: allowed by default"}
	if a.kind == tableError {
		v.Reason += " (" + a.reason + ")"
	}
	return v
}

func (r tableResult) verdict(inAllowFile bool) Verdict {
	v := Verdict{File: r.file, Line: r.line, Reason: r.reason, Severity: r.severity, severity: r.sevValue}
	switch r.kind {
	case tableJump:
		v.Allow = r.allow
	case tableError:
		v.Reason = "denied: " + r.reason
	case tableMatch:
		v.Allow = inAllowFile
		verb := "denied"
		if v.Allow {
			verb = "allowed"
		}
		v.Reason = fmt.Sprintf("%s by %s:%d", verb, r.file, r.line)
	}
	if v.Allow {
		v.Env = r.env
	}
	return v
}

// tableMatch is table_match(): it scans one rule file for the first rule
// whose daemon list and client list both match, then runs its options.
func (c *checker) tableMatch(path string) tableResult {
	f, err := openRules(path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, errNotRegular) {
			return tableResult{kind: tableNoMatch}
		}
		return tableResult{kind: tableError, file: path,
			reason: fmt.Sprintf("cannot open %s: %v", path, errors.Unwrap(err))}
	}
	defer f.Close()
	r := newLineReader(f)
	for {
		line, first, ok := r.xgets(c.ctx)
		if c.ctx.Err() != nil {
			return tableResult{kind: tableError, file: path, reason: "interrupted"}
		}
		if !ok {
			return tableResult{kind: tableNoMatch}
		}
		if line == "" || line[len(line)-1] != '\n' {
			// libwrap gives up on the whole file here, so a missing
			// final newline makes a deny file deny everyone.
			return tableResult{kind: tableError, file: path, line: first,
				reason: fmt.Sprintf("%s:%d: missing newline or line too long; the rest of the file is ignored", path, first)}
		}
		if line[0] == '#' || strspn(line, " \t\r\n") == len(line) {
			continue
		}
		if msg := brackets(line); msg != "" {
			c.malformed = append(c.malformed, Problem{File: path, Line: first, Msg: msg + ": the rule cannot match as written"})
		}
		svList, rest, ok := splitAt(line, ':')
		if !ok {
			// libwrap syslogs "missing ":" separator" and skips the rule.
			c.malformed = append(c.malformed, Problem{File: path, Line: first, Msg: `missing ":" separator: the rule is skipped`})
			continue
		}
		clList, options, hasOptions := splitAt(rest, ':')
		matched := c.listMatch(svList, c.serverMatch) && c.listMatch(clList, c.clientMatch)
		if c.stop != "" {
			// An EXCEPT can turn an aborted match into a match, so
			// this is checked whatever matched says.
			return tableResult{kind: tableJump, allow: false, file: path, line: first,
				reason: fmt.Sprintf("denied at %s:%d: %s", path, first, c.stop)}
		}
		if !matched {
			continue
		}
		res := tableResult{kind: tableMatch, file: path, line: first}
		if hasOptions {
			c.processOptions(options, &res)
		}
		return res
	}
}

// lineReader reads a rule file the way libwrap's fgets and xgets do,
// byte for byte, NUL bytes and over-long lines included.
type lineReader struct {
	r    *bufio.Reader
	line int // physical lines read so far
}

func newLineReader(rd io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(rd, 4096)}
}

// fgets is fgets(3) into dst (len(dst) is fgets's size argument): it reads
// at most len(dst)-1 bytes, up to and including a newline, and stores a
// NUL after them. It returns false when it read nothing (end of file or a
// read error: fgets returns NULL for both).
func (l *lineReader) fgets(dst []byte) bool {
	n := 0
	for n < len(dst)-1 {
		b, err := l.r.ReadByte()
		if err != nil {
			break
		}
		dst[n] = b
		n++
		if b == '\n' {
			l.line++
			break
		}
	}
	dst[n] = 0
	return n > 0
}

// xgets is libwrap's xgets: it reads one logical line into a bufLen
// buffer, joining lines that end in backslash-newline (the backslash and
// the newline vanish: nothing replaces them). It stops early when the
// buffer is full, leaving a line with no newline at its end, which the
// caller takes as an error. It returns the line as C sees it (up to the
// first NUL) and the number of the physical line it started on.
func (l *lineReader) xgets(ctx context.Context) (string, int, bool) {
	var buf [bufLen]byte
	first := l.line + 1
	ptr, size := 0, bufLen
	for {
		// Lines that C sees as empty (a NUL first) never fill the
		// buffer, so this loop can run through a whole file.
		if ctx.Err() != nil {
			return "", first, false
		}
		if !l.fgets(buf[ptr : ptr+size]) {
			if ptr > 0 {
				return cstr(buf[:]), first, true
			}
			return "", first, false
		}
		got := len(cstr(buf[ptr:]))
		if got >= 1 && buf[ptr+got-1] == '\n' {
			if got < 2 || buf[ptr+got-2] != '\\' {
				return cstr(buf[:]), first, true
			}
			got -= 2
		}
		ptr += got
		size -= got
		if size == 1 {
			return cstr(buf[:]), first, true
		}
		buf[ptr] = 0
	}
}
