// Package maillog writes one key=value line per mail event (connect,
// reject, queued, sent, deferred, bounced), keyed by queue ID.
//
// It never writes to a socket on fd 2: under xinetd that is the SMTP
// client. "auto" picks stderr when it is a terminal or a file (an admin
// running the program by hand), else the journal, else syslog (facility
// mail), else nothing.
package maillog

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
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
func Open(target, prog string) (*Logger, error) {
	switch target {
	case "none":
		return Discard(), nil
	case "stderr":
		if !StderrSafe() {
			return Discard(), nil
		}
		return New(prog, os.Stderr), nil
	case "journal":
		return journalLogger(prog), nil
	case "syslog":
		return syslogLogger(prog)
	case "auto":
		if StderrInteractive() {
			return New(prog, os.Stderr), nil
		}
		if journal.Enabled() {
			return journalLogger(prog), nil
		}
		if l, err := syslogLogger(prog); err == nil {
			return l, nil
		}
		return Discard(), nil
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("maillog: open %s: %w", target, err)
	}
	return New(prog, f), nil
}

func journalLogger(prog string) *Logger {
	vars := map[string]string{"SYSLOG_IDENTIFIER": prog, "SYSLOG_FACILITY": "2"}
	return &Logger{prog: prog, emit: func(lv Level, line string) {
		journal.Send(line, journal.Priority(lv), vars)
	}}
}

func syslogLogger(prog string) (*Logger, error) {
	w, err := syslog.New(syslog.LOG_MAIL|syslog.LOG_INFO, prog)
	if err != nil {
		return nil, fmt.Errorf("maillog: syslog: %w", err)
	}
	return &Logger{prog: prog, emit: func(lv Level, line string) {
		switch lv {
		case Error:
			w.Err(line)
		case Warning:
			w.Warning(line)
		default:
			w.Info(line)
		}
	}}, nil
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
