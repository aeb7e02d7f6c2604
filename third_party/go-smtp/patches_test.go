package smtp_test

// Tests of smtp-bs's patches (see PATCHES), one or more per patch.

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// cmd sends one line and returns the last line of the reply.
func cmd(t *testing.T, c net.Conn, scanner *bufio.Scanner, line string) string {
	t.Helper()
	io.WriteString(c, line+"\r\n")
	for scanner.Scan() {
		l := scanner.Text()
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
	t.Fatalf("%q: connection closed", line)
	return ""
}

// expect fails unless reply starts with want.
func expect(t *testing.T, reply, want string) {
	t.Helper()
	if !strings.HasPrefix(reply, want) {
		t.Errorf("got %q, want %q", reply, want)
	}
}

func TestServerRcptSourceRoute(t *testing.T) {
	be, s, c, scanner, _ := testServerEhlo(t)
	defer s.Close()
	defer c.Close()
	expect(t, cmd(t, c, scanner, "MAIL FROM:<root@nsa.gov>"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<@a.example,@b.example:u@c.example>"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
	expect(t, cmd(t, c, scanner, "DATA"), "354 ")
	expect(t, cmd(t, c, scanner, "Subject: x\r\n\r\nx\r\n."), "250 ")
	m := be.anonmsgs[0]
	if m.To[0] != "u@c.example" || m.RcptOpts[0].SourceRoute != "@a.example,@b.example" {
		t.Errorf("first RCPT: %q with route %q", m.To[0], m.RcptOpts[0].SourceRoute)
	}
	if m.RcptOpts[1].SourceRoute != "" {
		t.Errorf("second RCPT: route %q, want none", m.RcptOpts[1].SourceRoute)
	}
}

func TestServerMaxCommandLineLength(t *testing.T) {
	_, s, c, scanner, _ := testServerEhlo(t, func(s *smtp.Server) {
		s.MaxLineLength, s.MaxCommandLineLength = 64<<10, 2048
	})
	defer s.Close()
	defer c.Close()
	// Exactly the limit is a command; a message line may still be longer.
	expect(t, cmd(t, c, scanner, "MAIL FROM:<"+strings.Repeat("a", 2048-len("MAIL FROM:<@b.example>"))+"@b.example>"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
	expect(t, cmd(t, c, scanner, "DATA"), "354 ")
	expect(t, cmd(t, c, scanner, "X: "+strings.Repeat("x", 3000)+"\r\n\r\nx\r\n."), "250 ")
	// One octet more is too long, and ends the session.
	expect(t, cmd(t, c, scanner, "MAIL FROM:<"+strings.Repeat("a", 2049-len("MAIL FROM:<@b.example>"))+"@b.example>"), "500 5.4.0 ")
	if scanner.Scan() {
		t.Errorf("the session goes on: %q", scanner.Text())
	}
}

func TestServerDotCRKept(t *testing.T) {
	be, s, c, scanner, _ := testServerEhlo(t)
	defer s.Close()
	defer c.Close()
	for _, tc := range []struct{ sent, got string }{
		{"a\r\n.\rb\r\n", "a\r\n\rb\r\n"},
		{"a\r\n.\r\r\nb\r\n", "a\r\n\r\r\nb\r\n"},
		{"a\r\n.\r.\r\n", "a\r\n\r.\r\n"},
		{"a\r\n..\r\n", "a\r\n.\r\n"},
	} {
		expect(t, cmd(t, c, scanner, "MAIL FROM:<root@nsa.gov>"), "250 ")
		expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
		expect(t, cmd(t, c, scanner, "DATA"), "354 ")
		expect(t, cmd(t, c, scanner, tc.sent+"."), "250 ")
		if got := string(be.anonmsgs[len(be.anonmsgs)-1].Data); got != tc.got {
			t.Errorf("%q: Data read %q, want %q", tc.sent, got, tc.got)
		}
	}
}

func TestServerCommandSyntax(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"HELO a\rb", "500 5.5.2 "},
		{"EHLO nul\x00host", "500 5.5.2 "},
		{"HELO a\x1b[2Jb", "500 5.5.2 "},
		{"EHLO a\x7fb", "500 5.5.2 "},
		{"MAIL FROM:<a\x08@b.example>", "500 5.5.2 "},
		{"X\rYZ", "500 5.5.2 "},
		{"FOOBAR x", "500 5.5.2 Syntax error, command unrecognized"},
		{"QUI", "500 5.5.2 "},
		{"HELOX", "500 5.5.2 "},
		{"\u017ftarttls", "500 5.5.2 "}, // ſ upper-cases to S
		{"\u017fTARTTLS", "500 5.5.2 "},
		{"HELO\tx", "500 5.5.2 "},
		{"helo  x.example", "250 "},
		{"NOOP", "250 "},
	} {
		_, s, c, scanner := testServerGreeted(t)
		reply := cmd(t, c, scanner, tc.line)
		expect(t, reply, tc.want)
		if strings.ContainsAny(reply, "\r\x00\x1b\x7f\x08") || strings.Contains(reply, "\u017f") {
			t.Errorf("%q: the reply echoes it: %q", tc.line, reply)
		}
		c.Close()
		s.Close()
	}
}

func TestServerStartTLSArguments(t *testing.T) {
	_, s, c, scanner, _ := testServerEhlo(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{} })
	defer s.Close()
	defer c.Close()
	expect(t, cmd(t, c, scanner, "STARTTLS now"), "501 5.5.4 ")
	expect(t, cmd(t, c, scanner, "STARTTLSX"), "500 5.5.2 ")
	expect(t, cmd(t, c, scanner, "NOOP"), "250 ")
}

func TestServerCloses421(t *testing.T) {
	be, s, c, scanner, _ := testServerEhlo(t)
	defer s.Close()
	defer c.Close()
	be.userErr = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many errors"}
	// Pipelined after the MAIL that gets 421: never read.
	io.WriteString(c, "MAIL FROM:<root@nsa.gov>\r\nNOOP\r\nNOOP\r\n")
	if !scanner.Scan() || !strings.HasPrefix(scanner.Text(), "421 ") {
		t.Fatalf("MAIL: got %q, want 421", scanner.Text())
	}
	if scanner.Scan() {
		t.Errorf("after 421 the server answered %q", scanner.Text())
	}
}

func TestServerReplies(t *testing.T) {
	_, s, c, scanner := testServerGreeted(t)
	defer s.Close()
	defer c.Close()
	for _, tc := range []struct{ line, want string }{
		{"MAIL FROM:<root@nsa.gov>", "503 5.5.1 "},
		{"AUTH PLAIN", "503 5.5.1 "},
		{"HELP", "214 2.0.0 Commands supported: "},
		{"EHLO localhost", "250 "},
		{"AUTH", "501 5.5.4 "},
		{"RCPT TO:<u@d.example>", "503 5.5.1 "},
		{"DATA", "503 5.5.1 "},
		{"NOOP", "250 2.0.0 OK"},
		{"MAIL FROM:<root@nsa.gov>", "250 2.1.0 OK"},
		{"DATA", "503 5.5.1 "},
		{"RCPT TO:<u@d.example>", "250 2.1.5 OK"},
		{"EXPN list", "502 5.5.1 "},
	} {
		reply := cmd(t, c, scanner, tc.line)
		expect(t, reply, tc.want)
		if strings.ContainsAny(reply, "<>") || strings.Contains(reply, "Roger") {
			t.Errorf("%q: %q", tc.line, reply)
		}
	}
}

func TestServerBdatNeedsEhlo(t *testing.T) {
	be, s, c, scanner := testServerGreeted(t)
	defer s.Close()
	defer c.Close()
	expect(t, cmd(t, c, scanner, "HELO localhost"), "250 ")
	expect(t, cmd(t, c, scanner, "MAIL FROM:<root@nsa.gov>"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
	// The refused chunk is read and dropped, never taken for commands.
	expect(t, cmd(t, c, scanner, "BDAT 6 LAST\r\nNOOP"), "503 5.5.1 ")
	expect(t, cmd(t, c, scanner, "RSET"), "250 ")
	expect(t, cmd(t, c, scanner, "EHLO localhost"), "250 ")
	expect(t, cmd(t, c, scanner, "MAIL FROM:<root@nsa.gov>"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
	expect(t, cmd(t, c, scanner, "BDAT 5 LAST\r\nabc"), "250 ")
	if len(be.anonmsgs) != 1 || string(be.anonmsgs[0].Data) != "abc\r\n" {
		t.Errorf("messages: %v", be.anonmsgs)
	}
}

func TestServerDataAtMaxMessageBytes(t *testing.T) {
	be, s, c, scanner, _ := testServerEhlo(t, func(s *smtp.Server) { s.MaxMessageBytes = 20 })
	defer s.Close()
	defer c.Close()
	for _, tc := range []struct{ body, want string }{
		{strings.Repeat("x", 18) + "\r\n", "250 "},            // exactly 20 octets
		{strings.Repeat("x", 19) + "\r\n", "552 "},            // one more
		{"..\r\n" + strings.Repeat("x", 15) + "\r\n", "250 "}, // a stuffed dot counts once
	} {
		expect(t, cmd(t, c, scanner, "MAIL FROM:<root@nsa.gov>"), "250 ")
		expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
		expect(t, cmd(t, c, scanner, "DATA"), "354 ")
		expect(t, cmd(t, c, scanner, tc.body+"."), tc.want)
	}
	if len(be.anonmsgs) != 2 || len(be.anonmsgs[0].Data) != 20 {
		t.Errorf("messages: %d", len(be.anonmsgs))
	}
}

func TestServerCRBeforeCRLF(t *testing.T) {
	be, s, c, scanner, _ := testServerEhlo(t)
	defer s.Close()
	defer c.Close()
	expect(t, cmd(t, c, scanner, "MAIL FROM:<root@nsa.gov>"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<u@d.example>"), "250 ")
	expect(t, cmd(t, c, scanner, "DATA"), "354 ")
	// The data ends at the first ".\r\n" at the start of a line.
	expect(t, cmd(t, c, scanner, "a\r\r\n."), "250 ")
	expect(t, cmd(t, c, scanner, "NOOP"), "250 ")
	if got := string(be.anonmsgs[0].Data); got != "a\r\r\n" {
		t.Errorf("Data read %q", got)
	}
}

// Patch 12: ServeConn serves a connection it is handed on the calling
// goroutine, returns when the session ends, and leaves the connection
// closed; after Close it refuses.
func TestServerServeConn(t *testing.T) {
	be := new(backend)
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.ServeConn(server) }()
	scanner := bufio.NewScanner(client)
	if !scanner.Scan() || scanner.Text() != "220 localhost ESMTP Service Ready" {
		t.Fatalf("greeting: %q", scanner.Text())
	}
	expect(t, cmd(t, client, scanner, "EHLO client"), "250 ")
	expect(t, cmd(t, client, scanner, "MAIL FROM:<a@example.org>"), "250 ")
	expect(t, cmd(t, client, scanner, "RCPT TO:<b@example.org>"), "250 ")
	expect(t, cmd(t, client, scanner, "DATA"), "354 ")
	expect(t, cmd(t, client, scanner, "Subject: x\r\n\r\nbody\r\n."), "250 ")
	expect(t, cmd(t, client, scanner, "QUIT"), "221 ")
	if err := <-done; err != nil {
		t.Errorf("ServeConn: %v", err)
	}
	if n := len(be.messages) + len(be.anonmsgs); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	if _, err := server.Write([]byte("x")); err == nil {
		t.Error("the connection is still open after ServeConn returned")
	}

	s.Close()
	c1, c2 := net.Pipe()
	defer c2.Close()
	if err := s.ServeConn(c1); err != smtp.ErrServerClosed {
		t.Errorf("ServeConn after Close: %v, want ErrServerClosed", err)
	}
	if _, err := c1.Write([]byte("x")); err == nil {
		t.Error("ServeConn after Close left the connection open")
	}
}

// Patch 13: with Greeted, the session starts by reading the client's
// first command; the caller wrote the greeting.
func TestServerGreeted(t *testing.T) {
	be := new(backend)
	s := smtp.NewServer(be)
	s.Domain = "localhost"
	s.Greeted = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(server, "220 early greeting\r\n")
	go s.ServeConn(server)
	scanner := bufio.NewScanner(client)
	if !scanner.Scan() || scanner.Text() != "220 early greeting" {
		t.Fatalf("greeting: %q", scanner.Text())
	}
	// The next line the client reads answers its EHLO: no second 220.
	expect(t, cmd(t, client, scanner, "EHLO client"), "250 ")
	expect(t, cmd(t, client, scanner, "QUIT"), "221 ")
}

// Patch 14: the xtext decoder's regexps are compiled on first use, not at
// init; an ENVID in xtext still decodes.
func TestServerXtextDecodedLazily(t *testing.T) {
	be, s, c, scanner, _ := testServerEhlo(t, func(s *smtp.Server) { s.EnableDSN = true })
	defer s.Close()
	expect(t, cmd(t, c, scanner, "MAIL FROM:<a@example.org> ENVID=QQ+2B1"), "250 ")
	expect(t, cmd(t, c, scanner, "RCPT TO:<b@example.org>"), "250 ")
	expect(t, cmd(t, c, scanner, "DATA"), "354 ")
	expect(t, cmd(t, c, scanner, "Subject: x\r\n\r\nbody\r\n."), "250 ")
	msgs := append(be.messages, be.anonmsgs...)
	if len(msgs) != 1 || msgs[0].Opts == nil || msgs[0].Opts.EnvelopeID != "QQ+1" {
		t.Fatalf("ENVID not decoded from xtext: %+v", msgs)
	}
}

// HELP lists BDAT only where it is taken: not after HELO (patch 8).
func TestServerHelpBdatAfterHelo(t *testing.T) {
	_, s, c, scanner := testServerGreeted(t)
	defer s.Close()
	expect(t, cmd(t, c, scanner, "HELO client"), "250 ")
	if r := cmd(t, c, scanner, "HELP"); !strings.HasPrefix(r, "214 ") || strings.Contains(r, "BDAT") {
		t.Errorf("HELP after HELO: %q", r)
	}
	expect(t, cmd(t, c, scanner, "EHLO client"), "250 ")
	if r := cmd(t, c, scanner, "HELP"); !strings.Contains(r, "BDAT") {
		t.Errorf("HELP after EHLO: %q", r)
	}
}
