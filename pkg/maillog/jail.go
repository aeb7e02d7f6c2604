package maillog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strings"
)

// journalSocket is where journald takes native-protocol datagrams.
var journalSocket = "/run/systemd/journal/socket"

// OpenJailed is Open for a process about to chroot: whatever the target,
// it is connected now and used through its descriptor from then on, since
// no path outside the jail resolves any more. A file and syslog already
// work that way (log/syslog keeps its connected socket). The journal does
// not: go-systemd's journal.Send names /run/systemd/journal/socket at
// every line. So "journal" (and "auto" when journald runs) gets a datagram
// socket connected now, speaking the journal's native protocol; if that
// cannot be had, syslog, and note says so, for the log itself.
func OpenJailed(target, prog string) (l *Logger, note string, err error) {
	switch target {
	case "journal":
		if l, err := connectedJournal(prog, journalSocket); err == nil {
			return l, "", nil
		} else if sl, serr := syslogLogger(prog); serr == nil {
			return sl, fmt.Sprintf("the journal cannot be reached from the chroot (%v): logging to syslog", err), nil
		}
		return nil, "", fmt.Errorf("maillog: journal: neither the journal nor syslog can be reached for the chroot: %w", err)
	case "auto":
		if StderrInteractive() {
			return New(prog, os.Stderr), "", nil
		}
		if l, err := connectedJournal(prog, journalSocket); err == nil {
			return l, "", nil
		}
		if l, err := syslogLogger(prog); err == nil {
			return l, "", nil
		}
		return Discard(), "", nil
	}
	l, err = Open(target, prog)
	return l, "", err
}

// connectedJournal dials journald once and sends every line on that
// connection.
func connectedJournal(prog, path string) (*Logger, error) {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &Logger{prog: prog, emit: func(lv Level, line string) {
		c.Write(journalDatagram(line, lv, prog))
	}}, nil
}

// journalDatagram is one entry in the journal's native protocol: KEY=value
// lines, or KEY, a newline, a 64-bit little-endian length and the value
// when the value holds a newline.
func journalDatagram(line string, lv Level, prog string) []byte {
	var b bytes.Buffer
	field := func(k, v string) {
		if !strings.Contains(v, "\n") {
			b.WriteString(k + "=" + v + "\n")
			return
		}
		b.WriteString(k + "\n")
		binary.Write(&b, binary.LittleEndian, uint64(len(v)))
		b.WriteString(v + "\n")
	}
	field("MESSAGE", line)
	field("PRIORITY", fmt.Sprint(int(lv)))
	field("SYSLOG_IDENTIFIER", prog)
	field("SYSLOG_FACILITY", "2")
	return b.Bytes()
}
