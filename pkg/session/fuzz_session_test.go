package session_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/session"
	"smtp-bs/pkg/spool"
)

// socketPair returns the two ends of a unix stream socket pair: like the
// connection the launcher hands over (it half-closes, and MSG_PEEK works
// on it), without spending a TCP port per run.
func socketPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

var (
	replyLineRe = regexp.MustCompile(`^[2-5][0-9][0-9][ -][^\r\n]*\r\n$`)
	queuedIDRe  = regexp.MustCompile(`^250 2\.0\.0 OK: queued as ([0-9a-z.]+)\r\n$`)
)

// FuzzSession drives a whole SMTP session: the greeting is awaited, then
// the fuzzer's bytes are sent as the client's stream and the write side is
// closed. Serve must return; every reply line must be a well-formed
// reply; exactly the messages that got "250 ... queued as ID" are in the
// queue, whole, and nothing is left in tmp/.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO c.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
		"EHLO c.example\r\nMAIL FROM:<a@client.example> BODY=8BITMIME SIZE=100\r\nRCPT TO:<b@remote.example>\r\nRCPT TO:<c@remote.example>\r\nDATA\r\n..dot\r\n.\r\n",
		"EHLO c.example\r\nMAIL FROM:<> SMTPUTF8\r\nRCPT TO:<jürgen@bücher.example>\r\nBDAT 5\r\nhelloBDAT 7 LAST\r\n\r\nworld\r\n",
		"EHLO c.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x>\r\n\r\n.\r\n",
		"EHLO c.example\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\nx\r\n.\rMAIL FROM:<e@x>\r\n.\r\n",
		"HELO c\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<@a.example:u@b.example>\r\nRCPT TO:<u%v@mx.test.example>\r\nDATA\r\nx\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@client.example>\r\nMAIL FROM:<b@client.example>\r\nRSET\r\nVRFY x\r\nNOOP\r\nHELP\r\nEXPN y\r\nSTARTTLS\r\nAUTH PLAIN AGEAYg==\r\n",
		"EHLO c\r\nBDAT 10 LAST\r\n0123456789MAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nBDAT 0 LAST\r\n",
		"EHLO c\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\nnul\x00here\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<" + strings.Repeat("a", 3000) + "@x>\r\n",
		"EHLO c\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\n" + strings.Repeat("Received: x\r\n", 101) + "\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\nunterminated",
		"\r\n\r\nEHLO\r\nehlo  c\r\nMAIL FROM: <a@client.example>\r\nRCPT  TO: <b@remote.example>\r\nBDAT\t5\r\nDATA\r\n.\r\n",
	} {
		for mode := byte(0); mode < 3; mode++ {
			f.Add(mode, []byte(s))
		}
	}
	clients := []session.Client{
		{Addr: netip.MustParseAddr("127.0.0.1")},  // in relay_networks
		{Addr: netip.MustParseAddr("192.0.2.77")}, // a stranger
		{Local: true}, // local submission
	}
	f.Fuzz(func(t *testing.T, mode byte, input []byte) {
		dir := t.TempDir()
		// No fsync: durability is not what this explores, speed is.
		sp, err := spool.Create(dir, spool.Ops{Fsync: func(*os.File) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		h := &harness{t: t, sp: sp, log: &lockedBuffer{}}
		h.srv = &session.Server{
			Config: testConfig(t, dir, "local_domains = [\"mx.test.example\"]\nmax_message_bytes = 20000\nmax_recipients = 5\n"+
				"max_errors = 30\ncommand_timeout = \"5s\"\ndata_timeout = \"5s\"\nsession_timeout = \"10s\"\n[auth]\nfailure_delay = \"0s\""),
			Spool: sp,
		}
		h.srv.Log = maillog.New("smtp-bs", h.log)
		c, s := socketPair(t)
		defer c.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.srv.Serve(context.Background(), s, clients[int(mode)%len(clients)])
		}()

		c.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(c)
		greeting, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(greeting, "220 ") {
			t.Fatalf("greeting %q, %v", greeting, err)
		}
		go func() {
			c.Write(input)
			c.(interface{ CloseWrite() error }).CloseWrite()
		}()
		ids := map[string]bool{}
		for {
			line, err := r.ReadString('\n')
			if line != "" && !replyLineRe.MatchString(line) {
				t.Fatalf("malformed reply line %q", line)
			}
			if m := queuedIDRe.FindStringSubmatch(line); m != nil {
				ids[m[1]] = true
			}
			if err != nil {
				if err != io.EOF {
					t.Fatalf("reading replies: %v", err)
				}
				break
			}
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Serve did not return")
		}
		if log := h.log.String(); strings.Contains(log, "panic") && !knownGoSMTPRace(log) {
			t.Fatalf("panic:\n%s", log)
		}
		queued := h.files("queue")
		if len(queued) != len(ids) {
			t.Fatalf("%d messages acknowledged, %d queued", len(ids), len(queued))
		}
		for _, id := range queued {
			if !ids[id] {
				t.Fatalf("queue/%s was never acknowledged", id)
			}
		}
		h.queued() // each whole
		if left := h.files("tmp"); len(left) != 0 {
			t.Fatalf("tmp/ holds %v after the session", left)
		}
	})
}

// knownGoSMTPRace recognises a go-smtp bug (v0.25.1, still in v0.26.0) that no backend can
// avoid: when the client goes away right after a BDAT command, go-smtp's
// BDAT goroutine may call Conn.Session() after Conn.Close() has set it to
// nil. go-smtp recovers that panic itself (handlePanic), nothing reaches
// our Data, and the spool checks below still hold. Any other panic fails.
func knownGoSMTPRace(log string) bool {
	return strings.Count(log, "panic serving") == 1 && strings.Contains(log, "nil pointer dereference") &&
		strings.Contains(log, "go-smtp.(*Conn).handleBdat.func1")
}
