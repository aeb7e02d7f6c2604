package maillog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// OpenJailed is Open for a process about to chroot: whatever the target,
// it is connected now and used through its descriptor from then on, since
// no path outside the jail resolves any more (every socket Open makes is
// connected once, and a file stays open). If "journal" cannot be had,
// syslog, and note says so, for the log itself.
func OpenJailed(target, prog string) (l *Logger, note string, err error) {
	return openJailed(target, prog, localDaemons)
}

func openJailed(target, prog string, d daemons) (l *Logger, note string, err error) {
	if target != "journal" {
		l, err = open(target, prog, d)
		return l, "", err
	}
	l, err = journalLogger(prog, d.journal)
	if err == nil {
		return l, "", nil
	}
	if sl, serr := syslogLogger(prog, d.syslog); serr == nil {
		return sl, fmt.Sprintf("the journal cannot be reached from the chroot (%v): logging to syslog", err), nil
	}
	return nil, "", fmt.Errorf("maillog: journal: neither the journal nor syslog can be reached for the chroot: %w", err)
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
