// Package maillog writes one key=value line per mail event (connect,
// reject, queued, sent, deferred, bounced), keyed by queue ID.
//
// It never writes to a socket on fd 2: under xinetd that is the SMTP
// client. "auto" picks stderr when it is a terminal or a file (an admin
// running the program by hand), else the journal when systemd started the
// program with stderr in it (JOURNAL_STREAM), else syslog (facility mail),
// else the journal, else stderr when it is not a socket (saying so once),
// else nothing.
package maillog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Level is a syslog severity.
type Level int

// The levels in use.
const (
	Error   Level = 3
	Warning Level = 4
	Info    Level = 6
)

// Logger is safe for concurrent use.
type Logger struct {
	prog string
	mu   sync.Mutex
	emit func(Level, string)
}

// Discard logs nothing.
func Discard() *Logger { return &Logger{emit: func(Level, string) {}} }

// New returns a logger writing plain lines to w (tests use this).
func New(prog string, w io.Writer) *Logger {
	l := &Logger{prog: prog}
	l.emit = func(_ Level, line string) {
		fmt.Fprintf(w, "%s %s[%d]: %s\n", time.Now().Format(time.RFC3339), prog, os.Getpid(), line)
	}
	return l
}

// Open returns a logger for target: "auto", "journal", "syslog", "stderr",
// "none" or an absolute file path.
func Open(target, prog string) (*Logger, error) { return open(target, prog, localDaemons) }

// daemons are the sockets of the local log daemons.
type daemons struct {
	journal string
	syslog  []string
}

var localDaemons = daemons{
	journal: "/run/systemd/journal/socket",
	syslog:  []string{"/dev/log", "/var/run/syslog", "/var/run/log"},
}

func open(target, prog string, d daemons) (*Logger, error) {
	switch target {
	case "none":
		return Discard(), nil
	case "stderr":
		if !StderrSafe() {
			return Discard(), nil
		}
		return New(prog, os.Stderr), nil
	case "journal":
		return journalLogger(prog, d.journal)
	case "syslog":
		return syslogLogger(prog, d.syslog)
	case "auto":
		if StderrInteractive() {
			return New(prog, os.Stderr), nil
		}
		// Started by systemd with stderr in the journal: the journal. Else
		// syslog first (on a systemd host journald reads /dev/log too):
		// one connect either way.
		first, second := func() (*Logger, error) { return syslogLogger(prog, d.syslog) },
			func() (*Logger, error) { return journalLogger(prog, d.journal) }
		if os.Getenv("JOURNAL_STREAM") != "" {
			first, second = second, first
		}
		if l, err := first(); err == nil {
			return l, nil
		}
		if l, err := second(); err == nil {
			return l, nil
		}
		// No log daemon (a container, a chroot without /dev/log): stderr
		// rather than nowhere, when it is not the client, saying so once.
		if StderrSafe() {
			fmt.Fprintf(os.Stderr, "%s: log = \"auto\": no syslog socket (%s) and no journal (%s): logging to stderr\n",
				prog, strings.Join(d.syslog, ", "), d.journal)
			return New(prog, os.Stderr), nil
		}
		return Discard(), nil
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("maillog: open %s: %w", target, err)
	}
	return New(prog, f), nil
}

// journalLogger sends native-protocol datagrams to journald.
func journalLogger(prog, path string) (*Logger, error) {
	c, err := dialLocal([]string{path}, false)
	if err != nil {
		return nil, fmt.Errorf("maillog: journal: %w", err)
	}
	return &Logger{prog: prog, emit: func(lv Level, line string) {
		c.write(journalDatagram(line, lv, prog))
	}}, nil
}

// syslogLogger writes to the local syslog daemon, facility mail, in the
// form log/syslog uses for a local daemon.
func syslogLogger(prog string, paths []string) (*Logger, error) {
	c, err := dialLocal(paths, true)
	if err != nil {
		return nil, fmt.Errorf("maillog: syslog: %w", err)
	}
	pid := os.Getpid()
	return &Logger{prog: prog, emit: func(lv Level, line string) {
		const facilityMail = 2 << 3
		c.write(fmt.Appendf(nil, "<%d>%s %s[%d]: %s\n", facilityMail|int(lv), time.Now().Format(time.Stamp), prog, pid, line))
	}}, nil
}

// localConn is a socket connected once to a log daemon and written with
// plain system calls: it costs one socket and one connect per process,
// and keeps working inside a chroot, where the daemon's path no longer
// resolves.
type localConn struct {
	fd     int
	stream bool
	path   string
}

// dialLocal connects a datagram socket to the first path that takes one,
// or (when stream is allowed, as some syslog daemons want) a stream socket.
func dialLocal(paths []string, stream bool) (*localConn, error) {
	err := error(unix.ENOENT)
	for _, p := range paths {
		for _, typ := range []int{unix.SOCK_DGRAM, unix.SOCK_STREAM} {
			if typ == unix.SOCK_STREAM && !stream {
				break
			}
			var fd int
			fd, err = unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return nil, err
			}
			if err = unix.Connect(fd, &unix.SockaddrUnix{Name: p}); err == nil {
				return &localConn{fd: fd, stream: typ == unix.SOCK_STREAM, path: p}, nil
			}
			unix.Close(fd)
			err = fmt.Errorf("%s: %w", p, err)
			if !errors.Is(err, unix.EPROTOTYPE) {
				break
			}
		}
	}
	return nil, err
}

// write sends b whole. When the daemon went away (restarted: a long-running
// qrun outlives it), it connects once more by path and resends; inside a
// chroot the path does not resolve and the line is lost, never the mail.
func (c *localConn) write(b []byte) {
	switch err := c.send(b); err {
	case nil:
		return
	case unix.ECONNREFUSED, unix.ENOTCONN, unix.EPIPE, unix.ECONNRESET:
	default:
		return // the line itself (say, too long for a datagram): lost alone
	}
	nc, err := dialLocal([]string{c.path}, c.stream)
	if err != nil {
		return
	}
	unix.Close(c.fd)
	*c = *nc
	c.send(b)
}

func (c *localConn) send(b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(c.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if !c.stream {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// StderrInteractive reports whether fd 2 is a terminal or a regular file.
func StderrInteractive() bool {
	var st unix.Stat_t
	if unix.Fstat(2, &st) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return true
	case unix.S_IFCHR:
		_, err := unix.IoctlGetTermios(2, unix.TCGETS)
		return err == nil
	}
	return false
}

// StderrSafe reports whether fd 2 is open and not an internet socket (the client).
func StderrSafe() bool {
	var st unix.Stat_t
	if unix.Fstat(2, &st) != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return true
	}
	sa, err := unix.Getsockname(2)
	if err != nil {
		return false
	}
	_, isUnix := sa.(*unix.SockaddrUnix)
	return isUnix
}

// Event logs one line: "event k=v k=v ...".
func (l *Logger) Event(lv Level, event string, kv ...any) {
	var b strings.Builder
	b.WriteString(event)
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteByte(' ')
		fmt.Fprint(&b, kv[i])
		b.WriteByte('=')
		b.WriteString(quote(fmt.Sprint(kv[i+1])))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.emit(lv, b.String())
}

// Printf and Println let go-smtp's ErrorLog land here, not on the client.
func (l *Logger) Printf(format string, v ...any) {
	l.Event(Error, "internal", "msg", fmt.Sprintf(format, v...))
}

// Println is Printf's sibling for go-smtp's Logger interface.
func (l *Logger) Println(v ...any) { l.Event(Error, "internal", "msg", fmt.Sprint(v...)) }

func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r == 0x7f {
			return strconv.Quote(s)
		}
	}
	return s
}
