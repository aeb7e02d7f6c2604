package maillog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConnectedJournal: the jail's journal logger sends native-protocol
// datagrams on a socket connected once, so it keeps working when the
// socket's path no longer resolves (here: removed, as inside a chroot).
func TestConnectedJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l, err := journalLogger("smtp-bs", path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	l.Event(Warning, "reject", "peer", "192.0.2.1", "reason", "two\nlines")
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := srv.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	for _, want := range []string{"MESSAGE=reject peer=192.0.2.1 reason=\"two\\nlines\"\n", "PRIORITY=4\n", "SYSLOG_IDENTIFIER=smtp-bs\n", "SYSLOG_FACILITY=2\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("datagram %q lacks %q", got, want)
		}
	}
}

func TestJournalDatagramBinary(t *testing.T) {
	d := journalDatagram("a\nb", Info, "p")
	var want bytes.Buffer
	want.WriteString("MESSAGE\n")
	binary.Write(&want, binary.LittleEndian, uint64(3))
	want.WriteString("a\nb\n")
	if !bytes.HasPrefix(d, want.Bytes()) {
		t.Errorf("got %q", d)
	}
}

// TestOpenJailedFallsBack: "journal" for a jail without a journal falls
// back to syslog and says so; with neither, it is an error that says so.
func TestOpenJailedFallsBack(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	d := daemons{journal: filepath.Join(dir, "none"), syslog: []string{sock}}
	l, note, err := openJailed("journal", "smtp-bs", d)
	if err != nil || l == nil || !strings.Contains(note, "logging to syslog") {
		t.Errorf("with syslog: %v, note %q", err, note)
	}
	d.syslog = []string{filepath.Join(dir, "also-none")}
	if _, _, err := openJailed("journal", "smtp-bs", d); err == nil || !strings.Contains(err.Error(), "neither the journal nor syslog") {
		t.Errorf("with neither: err %v", err)
	}
}

// TestSyslog: lines reach a datagram syslog daemon, and a stream one, in
// the local form (<priority>timestamp tag[pid]: message), facility mail,
// over a socket connected once; "auto" picks syslog when systemd did not
// put stderr in the journal.
func TestSyslog(t *testing.T) {
	dir := t.TempDir()
	dgram := filepath.Join(dir, "dgram.sock")
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dgram, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Setenv("JOURNAL_STREAM", "")
	l, err := open("auto", "smtp-bs", daemons{journal: filepath.Join(dir, "none"), syslog: []string{filepath.Join(dir, "missing"), dgram}})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dgram)
	l.Event(Error, "error", "stage", "spool")
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := srv.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(fmt.Sprintf(`^<19>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d smtp-bs\[%d\]: error stage=spool\n$`, os.Getpid()))
	if !want.Match(buf[:n]) {
		t.Errorf("datagram %q", buf[:n])
	}

	stream := filepath.Join(dir, "stream.sock")
	ln, err := net.Listen("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l, err = syslogLogger("qrun", []string{stream})
	if err != nil {
		t.Fatal(err)
	}
	l.Event(Info, "sent", "id", "x")
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "<22>") || !strings.HasSuffix(line, "qrun["+strconv.Itoa(os.Getpid())+"]: sent id=x\n") {
		t.Errorf("stream line %q (%v)", line, err)
	}
}

// TestSyslogRestarted: a syslog daemon that restarts (its socket made
// anew at the same path) gets the next line: a long-running qrun outlives
// many such restarts.
func TestSyslogRestarted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.sock")
	listen := func() *net.UnixConn {
		srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return srv
	}
	read := func(srv *net.UnixConn) string {
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := srv.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	first := listen()
	l, err := syslogLogger("qrun", []string{path})
	if err != nil {
		t.Fatal(err)
	}
	l.Event(Info, "pass", "n", "1")
	if got := read(first); !strings.Contains(got, "pass n=1") {
		t.Fatalf("first daemon got %q", got)
	}
	first.Close()
	os.Remove(path)
	second := listen()
	defer second.Close()
	l.Event(Info, "pass", "n", "2")
	if got := read(second); !strings.Contains(got, "pass n=2") {
		t.Fatalf("restarted daemon got %q", got)
	}
}
