package testenv

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Dialogue is a raw SMTP conversation, chasquid-style: send a line,
// expect a reply code.
type Dialogue struct {
	T    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// Dial connects to addr and reads the greeting, which must have code greet.
func Dial(t testing.TB, addr string, greet int) *Dialogue {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := &Dialogue{T: t, Conn: c, R: bufio.NewReader(c)}
	d.Expect(greet)
	return d
}

// DialFrom connects to addr from a given 127.0.0.0/8 source address and
// returns the greeting's code and text, whatever they are.
func DialFrom(t testing.TB, src, addr string) (*Dialogue, int, string) {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := &Dialogue{T: t, Conn: c, R: bufio.NewReader(c)}
	code, text := d.Reply()
	return d, code, text
}

// Reply reads one (possibly multi-line) reply and returns its code and text.
func (d *Dialogue) Reply() (int, string) {
	d.T.Helper()
	d.Conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var text []string
	for {
		line, err := d.R.ReadString('\n')
		if err != nil {
			return 0, strings.Join(append(text, "read error: "+err.Error()), "\n")
		}
		line = strings.TrimRight(line, "\r\n")
		text = append(text, line)
		if len(line) < 4 || line[3] != '-' {
			code, _ := strconv.Atoi(line[:min(3, len(line))])
			return code, strings.Join(text, "\n")
		}
	}
}

// Expect reads a reply and fails unless its code is want.
func (d *Dialogue) Expect(want int) string {
	d.T.Helper()
	code, text := d.Reply()
	if code != want {
		d.T.Fatalf("want %d, got %q", want, text)
	}
	return text
}

// Send writes raw bytes.
func (d *Dialogue) Send(s string) {
	d.T.Helper()
	d.Conn.SetWriteDeadline(time.Now().Add(15 * time.Second))
	if _, err := d.Conn.Write([]byte(s)); err != nil {
		d.T.Fatalf("write: %v", err)
	}
}

// Cmd sends one command line and expects a reply code; it returns the text.
func (d *Dialogue) Cmd(line string, want int) string {
	d.T.Helper()
	d.Send(line + "\r\n")
	code, text := d.Reply()
	if code != want {
		d.T.Fatalf("%s: want %d, got %q", line, want, text)
	}
	return text
}

// Cmdf is Cmd with formatting.
func (d *Dialogue) Cmdf(want int, format string, a ...any) string {
	d.T.Helper()
	return d.Cmd(fmt.Sprintf(format, a...), want)
}

// TCPPair returns both ends of a real TCP connection on 127.0.0.1: the
// accepted end (what a launcher hands smtp-bs) and the dialled one.
func TCPPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}
