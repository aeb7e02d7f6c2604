package maillog

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
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
	l, err := connectedJournal("smtp-bs", path)
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

func TestOpenJailedFallsBack(t *testing.T) {
	old := journalSocket
	journalSocket = filepath.Join(t.TempDir(), "none")
	defer func() { journalSocket = old }()
	l, note, err := OpenJailed("journal", "smtp-bs")
	switch {
	case err != nil: // no syslog here either: it says so
		if !strings.Contains(err.Error(), "neither the journal nor syslog") {
			t.Errorf("err %v", err)
		}
	case l == nil || !strings.Contains(note, "syslog"):
		t.Errorf("note %q", note)
	}
}
