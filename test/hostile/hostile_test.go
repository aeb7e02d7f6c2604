// Package hostile talks to the real smtp-bs, under the real
// systemd-socket-activate launcher on 127.0.0.1, the way the worst
// clients of the internet do: SMTP smuggling, overlong lines, NUL bytes,
// commands out of order, pipelining abuse, early talkers, slow clients,
// lying BDAT sizes, huge headers, 10,000 recipients, endless DATA. Each
// case asserts the reply and the spool, and the memory of the smtp-bs
// process stays bounded. The suites about the protocol itself run in
// every mode (plaintext, after STARTTLS, under implicit TLS) with the same
// expectations: one reader of SMTP, whatever the transport.
package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// memLimit bounds the peak resident memory of one smtp-bs under attack.
const memLimit = 64 << 20

// server is one installation under attack.
type server struct {
	t    *testing.T
	env  *testenv.Env
	addr string
	pid  int // the launcher's
}

func start(t *testing.T, smtpExtra string) *server {
	t.Helper()
	return startMode(t, testenv.Plain, smtpExtra)
}

// startMode is start with clients that reach the dialogue in mode m.
func startMode(t *testing.T, m testenv.Mode, smtpExtra string) *server {
	t.Helper()
	e := testenv.New(t)
	e.Extra["smtp"] = smtpExtra
	// Some tests shrink command_timeout; AUTH's delay must stay below it.
	e.Top = "[auth]\nfailure_delay = \"0s\"\n"
	e.WriteConfig()
	e.UseMode(m)
	addr, cmd := e.SocketActivateCmd()
	return &server{t: t, env: e, addr: addr, pid: cmd.Process.Pid}
}

// conn is a raw client connection with the pid of the smtp-bs serving it.
type conn struct {
	*testenv.Dialogue
	pid int
	hwm atomic.Int64 // the last VmHWM seen (a peak: it only grows)
}

// watch samples the process's peak memory until it exits, so that a
// session that ends before the test looks still has a figure.
func (c *conn) watch() {
	for {
		hwm, err := testenv.Status(c.pid, "VmHWM")
		if err != nil {
			return
		}
		c.hwm.Store(hwm)
		time.Sleep(20 * time.Millisecond)
	}
}

// dial connects, reads the greeting and finds the smtp-bs process.
func (s *server) dial() *conn {
	s.t.Helper()
	d := s.env.DialMode(s.addr)
	pid, err := testenv.WaitChild(s.pid, 5*time.Second)
	if err != nil {
		s.t.Fatal(err)
	}
	c := &conn{Dialogue: d, pid: pid}
	// One figure before the test goes on: on a loaded machine the watcher
	// may not run before a session that is cut short has exited.
	if hwm, err := testenv.Status(pid, "VmHWM"); err == nil {
		c.hwm.Store(hwm)
	}
	go c.watch()
	return c
}

// peak fails the test if the process has used more than memLimit.
func (c *conn) peak(what string) int64 {
	c.T.Helper()
	hwm, err := testenv.Status(c.pid, "VmHWM")
	if err != nil {
		hwm = c.hwm.Load() // it has exited: its last figure
	}
	if hwm == 0 {
		c.T.Fatalf("%s: no memory figure for smtp-bs %d", what, c.pid)
	}
	if hwm > memLimit {
		c.T.Errorf("%s: smtp-bs peak memory %d MB, over %d MB", what, hwm>>20, memLimit>>20)
	}
	c.T.Logf("%s: smtp-bs peak memory %.1f MB", what, float64(hwm)/(1<<20))
	return hwm
}

// gone waits until the connection is closed by the server and its
// process has exited.
func (c *conn) gone(within time.Duration) {
	c.T.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(within))
	io.Copy(io.Discard, c.Conn)
	deadline := time.Now().Add(within)
	for testenv.Alive(c.pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if testenv.Alive(c.pid) {
		c.T.Errorf("smtp-bs %d still runs %v after its session should have ended", c.pid, within)
	}
}

// queued reads every queued message's content, checking each is whole.
func (s *server) queued() [][]byte {
	s.t.Helper()
	sp, err := spool.Open(s.env.SpoolDir, spool.Ops{})
	if err != nil {
		s.t.Fatal(err)
	}
	var out [][]byte
	for _, id := range s.env.Queued() {
		env, err := sp.ReadEnvelope(id)
		if err != nil {
			s.t.Fatalf("queue/%s: %v", id, err)
		}
		f, err := sp.OpenData(env)
		if err != nil {
			s.t.Fatalf("queue/%s: %v", id, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		out = append(out, b)
	}
	return out
}

// nothingSpooled asserts the queue and the working directories are empty.
func (s *server) nothingSpooled(what string) {
	s.t.Helper()
	for _, d := range []string{"queue", "data", "tmp"} {
		if ents, _ := os.ReadDir(filepath.Join(s.env.SpoolDir, d)); len(ents) != 0 {
			s.t.Errorf("%s: %s/ holds %d files", what, d, len(ents))
		}
	}
}

func (c *conn) expectPrefix(prefix string) string {
	c.T.Helper()
	_, text := c.Reply()
	if !strings.HasPrefix(text, prefix) {
		c.T.Fatalf("want %q, got %q", prefix, text)
	}
	return text
}

// inEveryMode runs test once per mode, each with its own server: the same
// test, the same expected replies and spool.
func inEveryMode(t *testing.T, smtpExtra string, test func(t *testing.T, s *server)) {
	for _, m := range testenv.Modes {
		t.Run(string(m), func(t *testing.T) { test(t, startMode(t, m, smtpExtra)) })
	}
}

// TestSmuggling sends every end-of-data look-alike made of bare CR and LF
// inside a message, followed by a pipelined second transaction, then the
// real end of data. smtp-bs must refuse the message with 554 5.6.0, or
// (for the forms go-smtp normalises) queue exactly one message that holds
// the would-be second one as text: never two.
func TestSmuggling(t *testing.T) {
	inEveryMode(t, "max_errors = 1000", func(t *testing.T, s *server) {
		// Each look-alike with what may happen: all must be refused but the
		// last two, which are plain content. A line that starts ".\r" and
		// goes on with something other than LF keeps its CR (go-smtp patch
		// 3: it was dropped, and the message stored altered), and the body
		// check refuses it.
		type form struct {
			text      string
			mayAccept bool
		}
		lookAlikes := []form{
			{"\n.\n", false}, {"\n.\r\n", false}, {"\n.\r", false}, {"\r.\r\n", false}, {"\r.\n", false}, {"\r.\r", false},
			{"\r\n.\r", false}, {"\r\n.\n", false}, {"\r\n.\r\r\n", false}, {"\r\r\n.\r\r\n", false}, {"\r\n.\n\r\n", false},
			{"\n\n.\n\n", false}, {"\r\n\x00.\r\n", false}, {"\r\n.\x00\r\n", false},
			{"\r\n..\r\n", true}, {"\r\n .\r\n", true},
		}
		smuggled := "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@remote.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"
		refused, single := 0, 0
		for i, f := range lookAlikes {
			la := f.text
			before := len(s.queued())
			c := s.dial()
			c.Cmd("EHLO client.example", 250)
			c.Cmd("MAIL FROM:<a@client.example>", 250)
			c.Cmd("RCPT TO:<b@remote.example>", 250)
			c.Cmd("DATA", 354)
			c.Send(fmt.Sprintf("Subject: carrier %d\r\n\r\nbody", i) + la + smuggled + "\r\n.\r\n")
			code, text := c.Reply()
			after := s.queued()
			switch {
			case code == 554 && strings.HasPrefix(text, "554 5.6.0"):
				refused++
				if len(after) != before {
					t.Errorf("%q: refused, yet %d messages queued", la, len(after)-before)
				}
			case code == 250:
				single++
				if !f.mayAccept {
					t.Errorf("%q: accepted; it must be refused with 554 5.6.0", la)
				}
				if len(after) != before+1 {
					t.Errorf("%q: accepted, and %d messages queued (want one)", la, len(after)-before)
					break
				}
				m := after[len(after)-1]
				if !bytes.Contains(m, []byte("Subject: smuggled")) || !bytes.Contains(m, []byte(fmt.Sprintf("carrier %d", i))) {
					t.Errorf("%q: the queued message is not the whole carrier: %q", la, m)
				}
				if bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\r")) || bytes.Contains(bytes.ReplaceAll(m, []byte("\r\n"), nil), []byte("\n")) {
					t.Errorf("%q: queued with a bare CR or LF: %q", la, m)
				}
			default:
				t.Errorf("%q: got %q, want 554 5.6.0 or one message", la, text)
			}
			// The smuggled commands were content: the session is where it was.
			c.Cmd("RSET", 250)
			c.Cmd("QUIT", 221)
		}
		for _, m := range s.queued() {
			if bytes.HasPrefix(stripReceived(m), []byte("Subject: smuggled")) {
				t.Errorf("a smuggled message was queued: %q", m)
			}
		}
		t.Logf("%d end-of-data forms: %d refused with 554 5.6.0, %d queued as one message", len(lookAlikes), refused, single)
	})
}

// TestProtocolInEveryMode: what RFC 5321 asks of a server, and what
// smtp-bs refuses, are the same whatever the transport: <Postmaster>
// without a domain is taken, a source route is refused, a command line is
// bounded at 2048 octets, a ".\r" line is refused and never stored
// altered, replies carry the right codes, HELP answers, BDAT needs EHLO,
// STARTTLS takes no argument, a verb is ASCII, a message of exactly
// max_message_bytes fits, and after a 421 nothing pipelined is read.
func TestProtocolInEveryMode(t *testing.T) {
	const max = 3000
	inEveryMode(t, fmt.Sprintf("relay_networks = []\nmax_errors = 5\nmax_message_bytes = %d\nlocal_domains = [\"mx.test.example\"]", max), func(t *testing.T, s *server) {
		c := s.dial()
		c.Cmd("HELP", 214)
		c.Cmd("STARTTLS now", 501)
		c.Cmd("\u017ftarttls", 500) // "ſ" upper-cases to "S"
		c.Cmd("EHLO client.example", 250)
		if txt := c.Cmd("MAIL FROM:<a@client.example>", 250); !strings.HasPrefix(txt, "250 2.1.0 ") {
			t.Errorf("MAIL: %q, want 250 2.1.0", txt)
		}
		if txt := c.Cmd("RCPT TO:<Postmaster>", 250); !strings.HasPrefix(txt, "250 2.1.5 ") {
			t.Errorf("RCPT TO:<Postmaster>: %q, want 250 2.1.5", txt)
		}
		if txt := c.Cmd("RCPT TO:<@mx.test.example:user@mx.test.example>", 553); !strings.HasPrefix(txt, "553 5.1.0 ") {
			t.Errorf("source route: %q", txt)
		}
		// A command line of exactly 2048 octets is one.
		c.Cmd("NOOP "+strings.Repeat("n", 2048-5), 250)
		for _, txt := range []string{c.Cmd("NOOP", 250), c.Cmd("RSET", 250)} {
			if strings.ContainsAny(txt, "<>") || strings.Contains(txt, "Roger") || strings.Contains(txt, "successfully") {
				t.Errorf("reply %q", txt)
			}
		}
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<postmaster@mx.test.example>", 250)
		c.Cmd("DATA", 354)
		c.Send("Subject: dot-cr\r\n\r\nA\r\n.\rB\r\n.\r\n")
		c.expectPrefix("554 5.6.0")
		// Exactly max_message_bytes, as the client counts it.
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<postmaster@mx.test.example>", 250)
		c.Cmd("DATA", 354)
		head := "Subject: exact\r\n\r\n"
		c.Send(head + strings.Repeat("x", max-len(head)-2) + "\r\n.\r\n")
		c.expectPrefix("250 2.0.0 OK: queued as ")
		c.Cmd("HELO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<postmaster@mx.test.example>", 250)
		c.Send("BDAT 6 LAST\r\nNOOP\r\n")
		c.expectPrefix("503 5.5.1") // its chunk dropped, not read as a command
		c.Cmd("RSET", 250)
		c.Cmd("QUIT", 221)
		q := s.queued()
		if len(q) != 1 || !bytes.HasSuffix(q[0], []byte("Subject: exact\r\n\r\n"+strings.Repeat("x", max-len(head)-2)+"\r\n")) {
			t.Errorf("want only the exact-size message queued, got %d: %q", len(q), q)
		}
		env, _ := os.ReadFile(filepath.Join(s.env.SpoolDir, "queue", s.env.Queued()[0]))
		if !strings.Contains(string(env), "rcpt <postmaster@mx.test.example>") {
			t.Errorf("envelope:\n%s", env)
		}

		// Refusals pipelined past max_errors: the 421 is the last reply,
		// and the RCPT and DATA behind it are never read.
		c = s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		var b strings.Builder
		for i := 0; i < 5; i++ {
			fmt.Fprintf(&b, "RCPT TO:<r%d@remote.example>\r\n", i)
		}
		b.WriteString("RCPT TO:<postmaster@mx.test.example>\r\nDATA\r\nSubject: after 421\r\n\r\nx\r\n.\r\n")
		c.Send(b.String())
		for i := 0; i < 4; i++ {
			c.Expect(554)
		}
		c.Expect(421)
		if code, txt := c.Reply(); code != 0 {
			t.Errorf("after 421: %q", txt)
		}
		c.gone(5 * time.Second)
		if n := len(s.queued()); n != 1 {
			t.Errorf("%d messages queued, want the one from before", n)
		}
	})
}

func stripReceived(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte("Received: ")) {
		return b
	}
	i := bytes.Index(b, []byte("\r\n"))
	for i >= 0 && i+2 < len(b) && (b[i+2] == '\t' || b[i+2] == ' ') {
		i = i + 2 + bytes.Index(b[i+2:], []byte("\r\n"))
	}
	return b[i+2:]
}

// TestOverlongLines: a command line over 2048 bytes ends the session with
// 500 5.4.0; an endless one does too, without memory growing. In a
// message, a line of 60 KB is content; one of megabytes is refused (554
// 5.6.0, smtp-bs bounds a line at 64 KiB) and the session ends.
func TestOverlongLines(t *testing.T) {
	inEveryMode(t, "max_message_bytes = 20000000", func(t *testing.T, s *server) {
		c := s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Send("MAIL FROM:<" + strings.Repeat("a", 3000) + "@client.example>\r\n")
		c.expectPrefix("500 5.4.0")
		c.gone(5 * time.Second)

		c = s.dial()
		c.Cmd("EHLO client.example", 250)
		go writeEndless(c.Conn, bytes.Repeat([]byte("A"), 64<<10), 160) // 10 MB, no newline
		c.expectPrefix("500 5.4.0")
		c.peak("endless command line")
		c.gone(5 * time.Second)

		c = s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Cmd("DATA", 354)
		c.Send("X-Long: " + strings.Repeat("h", 60<<10) + "\r\nSubject: long header\r\n\r\nbody\r\n.\r\n")
		c.expectPrefix("250 2.0.0")
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Cmd("DATA", 354)
		go writeEndless(c.Conn, []byte("X-Longer: "+strings.Repeat("h", 8<<20)+"\r\nSubject: longer\r\n\r\nbody\r\n.\r\n"), 1)
		c.expectPrefix("554 5.6.0")
		c.peak("8 MB header line")
		c.gone(5 * time.Second)
		if q := s.queued(); len(q) != 1 || !bytes.Contains(q[0], []byte("Subject: long header")) {
			t.Errorf("want only the 60 KB-header message queued, got %d messages", len(q))
		}
	})
}

// writeEndless writes chunk n times, ignoring errors (the server may hang
// up in the middle, as it should).
func writeEndless(c net.Conn, chunk []byte, n int) {
	for i := 0; i < n; i++ {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// TestNUL: NUL in the content is refused (554 5.6.0), in an address it is
// a bad address (5xx), in HELO it does not reach the Received header.
func TestNUL(t *testing.T) {
	inEveryMode(t, "", func(t *testing.T, s *server) {
		c := s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Cmd("DATA", 354)
		c.Send("Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
		c.expectPrefix("554 5.6.0")
		s.nothingSpooled("NUL in content")

		c.Send("MAIL FROM:<a\x00b@client.example>\r\n")
		if code, text := c.Reply(); code < 500 {
			t.Errorf("NUL in MAIL FROM: got %q, want 5xx", text)
		}
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Send("RCPT TO:<b\x00@remote.example>\r\n")
		if code, text := c.Reply(); code < 500 {
			t.Errorf("NUL in RCPT TO: got %q, want 5xx", text)
		}
		c.Cmd("QUIT", 221)

		// NUL or a bare CR in a command line: a syntax error, and nothing of
		// it is echoed in a reply.
		for _, bad := range []string{"EHLO nul\x00host.example", "EHLO cr\rhost.example", "HELO a\rb", "X\rYZ", "MAIL FROM:<a@b.example>\r SIZE=1"} {
			c = s.dial()
			c.Send(bad + "\r\n")
			code, text := c.Reply()
			if code != 500 || strings.ContainsAny(text, "\r\x00") {
				t.Errorf("%q: got %d %q, want 500 and nothing echoed", bad, code, text)
			}
			c.Cmd("QUIT", 221)
		}
		c = s.dial()
		c.Cmd("EHLO host.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Cmd("DATA", 354)
		c.Send("Subject: helo\r\n\r\nx\r\n.\r\n")
		c.expectPrefix("250")
		c.Cmd("QUIT", 221)
		q := s.queued()
		if len(q) != 1 || bytes.Contains(q[0], []byte{0}) {
			t.Errorf("NUL in HELO reached the spool: %q", q)
		}
	})
}

// TestWrongOrder: every command out of its place gets a 5xx, and the
// content of a refused BDAT is never read as commands.
func TestWrongOrder(t *testing.T) {
	inEveryMode(t, "max_errors = 1000", func(t *testing.T, s *server) {
		c := s.dial()
		for _, cmd := range []string{"MAIL FROM:<a@client.example>", "RCPT TO:<b@remote.example>", "DATA"} {
			c.Cmd(cmd, 503) // RFC 5321 4.3.2: bad sequence of commands
		}
		c.Cmd("EHLO client.example", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 503)
		c.Cmd("DATA", 503)
		// A refused BDAT's chunk is discarded, not executed.
		chunk := "RSET\r\nMAIL FROM:<x@y.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\n"
		c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
		c.expectPrefix("503 5.5.1")
		c.Cmd("NOOP", 250)
		c.Cmd("DATA", 503) // the chunk's MAIL and RCPT did not happen
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		// A second MAIL inside the transaction: 503, the transaction
		// stays (RFC 5321 4.1.4).
		c.Cmd("MAIL FROM:<c@client.example>", 503)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Send("BDAT 5\r\nhello")
		c.expectPrefix("250")
		c.Cmd("DATA", 503) // during BDAT
		c.Cmd("RSET", 250)
		c.Cmd("QUIT", 221)
		c.gone(5 * time.Second)
		s.nothingSpooled("wrong order")
	})
}

// TestPipeliningAbuse: thousands of commands in one write are answered in
// order; a client that sends and never reads is cut off by the session
// cap, with memory bounded all along.
func TestPipeliningAbuse(t *testing.T) {
	s := start(t, "max_errors = 100000\nmax_messages = 100000\ncommand_timeout = \"2s\"\nsession_timeout = \"6s\"")
	c := s.dial()
	var b bytes.Buffer
	b.WriteString("EHLO client.example\r\n")
	const n = 2000
	for i := 0; i < n; i++ {
		b.WriteString("MAIL FROM:<a@client.example>\r\nRCPT TO:<b@remote.example>\r\nRSET\r\n")
	}
	b.WriteString("QUIT\r\n")
	go c.Conn.Write(b.Bytes())
	c.R = bufio.NewReaderSize(c.Conn, 1<<16)
	c.Expect(250)
	for i := 0; i < 3*n; i++ {
		if code, text := c.Reply(); code != 250 {
			t.Fatalf("reply %d: %q", i, text)
		}
	}
	c.Expect(221)
	c.peak("6000 pipelined commands")
	s.nothingSpooled("pipelining")

	// Sends forever, reads nothing.
	c = s.dial()
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		line := bytes.Repeat([]byte("NOOP\r\n"), 10000)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write(line)
		}
	}()
	for testenv.Alive(c.pid) && time.Since(start) < 20*time.Second {
		if hwm, err := testenv.Status(c.pid, "VmHWM"); err == nil && hwm > memLimit {
			t.Errorf("a client that never reads: smtp-bs at %d MB", hwm>>20)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	if el := time.Since(start); testenv.Alive(c.pid) || el > 12*time.Second {
		t.Errorf("a client that never reads held smtp-bs for %v (session_timeout 6s)", el)
	}
}

// TestEarlyTalker: a client that speaks before the greeting gets 554
// 5.5.0 and is disconnected; the log says so; nothing is spooled.
func TestEarlyTalker(t *testing.T) {
	s := start(t, "")
	for i := 0; i < 5; i++ {
		nc, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte("EHLO bot.example\r\nMAIL FROM:<spam@bot.example>\r\nRCPT TO:<b@remote.example>\r\nDATA\r\nSubject: spam\r\n\r\nspam\r\n.\r\nQUIT\r\n"))
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		all, _ := io.ReadAll(nc)
		nc.Close()
		if !strings.HasPrefix(string(all), "554 5.5.0 ") || strings.Count(string(all), "\r\n") != 1 {
			t.Errorf("early talker got %q, want a single 554 5.5.0 line", all)
		}
	}
	s.nothingSpooled("early talker")
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.env.Log(), "reject stage=greeting") < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(s.env.Log(), "reject stage=greeting"); n != 5 {
		t.Errorf("%d early talkers logged, want 5:\n%s", n, s.env.Log())
	}
	// A patient client is served as usual.
	c := s.dial()
	c.Cmd("EHLO patient.example", 250)
	c.Cmd("QUIT", 221)
}

// TestSlowClients: the idle timeout, the DATA timeout and the session cap
// each end a slow session, and nothing half-received is spooled.
func TestSlowClients(t *testing.T) {
	s := start(t, "command_timeout = \"1s\"\ndata_timeout = \"2s\"\nsession_timeout = \"4s\"")

	// Idle after the greeting.
	c := s.dial()
	start := time.Now()
	c.expectPrefix("421 4.4.2")
	if el := time.Since(start); el < 900*time.Millisecond || el > 4*time.Second {
		t.Errorf("idle timeout after %v, want about 1s", el)
	}
	c.gone(3 * time.Second)

	// A byte of DATA every 0.4 s: within the idle timeout each time, but
	// DATA as a whole must end within data_timeout.
	c = s.dial()
	c.Cmd("EHLO client.example", 250)
	c.Cmd("MAIL FROM:<a@client.example>", 250)
	c.Cmd("RCPT TO:<b@remote.example>", 250)
	c.Cmd("DATA", 354)
	start = time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			if _, err := c.Conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(400 * time.Millisecond)
		}
	}()
	code, text := c.Reply()
	if el := time.Since(start); el > 3500*time.Millisecond {
		t.Errorf("a trickling DATA lasted %v (data_timeout 2s)", el)
	}
	if code != 451 && code != 421 && code != 0 {
		t.Errorf("trickling DATA: got %q, want 451/421 or a disconnect", text)
	}
	c.gone(5 * time.Second)
	s.nothingSpooled("trickling DATA")

	// A NOOP every 0.5 s never idles, but the session cap ends it.
	c = s.dial()
	start = time.Now()
	for time.Since(start) < 8*time.Second {
		c.Send("NOOP\r\n")
		if code, _ := c.Reply(); code != 250 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if el := time.Since(start); el > 5500*time.Millisecond {
		t.Errorf("session lasted %v (session_timeout 4s)", el)
	}
	c.gone(3 * time.Second)
}

// TestBDATSizes: sizes that lie, do not parse or overflow.
func TestBDATSizes(t *testing.T) {
	inEveryMode(t, "max_message_bytes = 100000\nmax_errors = 1000\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"", func(t *testing.T, s *server) {
		c := s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		for _, bad := range []string{"BDAT", "BDAT x", "BDAT -5", "BDAT 4294967296", "BDAT 5 LAST extra", "BDAT 5 FIRST", "BDAT 1e3"} {
			c.Send(bad + "\r\n")
			if code, text := c.Reply(); code < 500 {
				t.Errorf("%q: got %q, want 5xx", bad, text)
			}
		}
		// Larger than max_message_bytes: refused, the chunk read and dropped.
		c.Send(fmt.Sprintf("BDAT 200000 LAST\r\n%s", strings.Repeat(strings.Repeat("y", 98)+"\r\n", 2000)))
		c.expectPrefix("552")
		c.Cmd("NOOP", 250)
		// Shorter than announced, then the client gives up.
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Send("BDAT 1000 LAST\r\nSubject: short\r\n\r\nonly this\r\n")
		c.gone(8 * time.Second)
		s.nothingSpooled("short BDAT")

		// A chunk shorter than its data: the rest is commands, not content.
		c = s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		body := "Subject: bdat\r\n\r\nx\r\n"
		c.Send(fmt.Sprintf("BDAT %d LAST\r\n%sNOOP\r\n", len(body), body))
		c.expectPrefix("250 2.0.0 OK: queued")
		c.Expect(250)  // the NOOP after the chunk was a command
		c.Cmd("", 500) // and so is this empty line, a bad one
		c.Cmd("QUIT", 221)
		if q := s.queued(); len(q) != 1 || !bytes.HasSuffix(q[0], []byte(body)) {
			t.Errorf("want exactly the announced bytes queued, got %q", q)
		}
	})
}

// TestHugeHeaderSection: a 10 MB header section is streamed; over
// max_message_bytes it is 552; too many Received headers are a loop.
func TestHugeHeaderSection(t *testing.T) {
	s := start(t, "max_message_bytes = 12000000")
	var h bytes.Buffer
	for i := 0; h.Len() < 10<<20; i++ {
		fmt.Fprintf(&h, "X-Junk-%07d: %s\r\n", i, strings.Repeat("j", 60))
	}
	c := s.dial()
	c.Cmd("EHLO client.example", 250)
	c.Cmd("MAIL FROM:<a@client.example>", 250)
	c.Cmd("RCPT TO:<b@remote.example>", 250)
	c.Cmd("DATA", 354)
	c.Send(h.String() + "Subject: huge\r\n\r\nbody\r\n.\r\n")
	c.expectPrefix("250 2.0.0")
	c.peak("10 MB header section")

	c.Cmd("MAIL FROM:<a@client.example>", 250)
	c.Cmd("RCPT TO:<b@remote.example>", 250)
	c.Cmd("DATA", 354)
	c.Send(h.String() + h.String() + "Subject: huger\r\n\r\nbody\r\n.\r\n")
	c.expectPrefix("552")
	c.peak("20 MB header section")

	c.Cmd("MAIL FROM:<a@client.example>", 250)
	c.Cmd("RCPT TO:<b@remote.example>", 250)
	c.Cmd("DATA", 354)
	c.Send(strings.Repeat("Received: from a by b; Sun, 22 Nov 2026 12:00:00 +0000\r\n", 120) + "Subject: loop\r\n\r\nx\r\n.\r\n")
	c.expectPrefix("554 5.4.6")
	c.Cmd("QUIT", 221)
	if q := s.queued(); len(q) != 1 {
		t.Errorf("want only the 10 MB message queued, got %d", len(q))
	}
}

// TestTenThousandRecipients: the first max_recipients are taken, the
// rest get 452, the message goes to exactly those; refusals for relaying
// end the session at max_errors.
func TestTenThousandRecipients(t *testing.T) {
	inEveryMode(t, "", func(t *testing.T, s *server) {
		c := s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		var b bytes.Buffer
		for i := 0; i < 10000; i++ {
			fmt.Fprintf(&b, "RCPT TO:<r%05d@remote.example>\r\n", i)
		}
		go c.Conn.Write(b.Bytes())
		ok, full := 0, 0
		for i := 0; i < 10000; i++ {
			switch code, text := c.Reply(); code {
			case 250:
				ok++
			case 452:
				full++
			default:
				t.Fatalf("RCPT %d: %q", i, text)
			}
		}
		if ok != 100 || full != 9900 {
			t.Errorf("%d accepted, %d refused with 452; want 100 and 9900", ok, full)
		}
		c.Cmd("DATA", 354)
		c.Send("Subject: many\r\n\r\nx\r\n.\r\n")
		c.expectPrefix("250")
		c.peak("10,000 RCPTs")
		c.Cmd("QUIT", 221)
		q := s.queued()
		if len(q) != 1 {
			t.Fatalf("want one message queued, got %d", len(q))
		}
		env, _ := os.ReadFile(filepath.Join(s.env.SpoolDir, "queue", s.env.Queued()[0]))
		if n := strings.Count(string(env), "\nrcpt "); n != 100 {
			t.Errorf("envelope holds %d recipients, want 100", n)
		}

		// Not a relay client: every RCPT is an error, and errors end it.
		s2 := startMode(t, s.env.Mode, "relay_networks = []\nmax_errors = 10")
		c = s2.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		go c.Conn.Write(b.Bytes())
		for i := 0; ; i++ {
			code, text := c.Reply()
			if code == 421 {
				if i != 9 {
					t.Errorf("closed after %d refusals, want 10", i+1)
				}
				break
			}
			if code != 554 || i > 10 {
				t.Fatalf("refused RCPT %d: %q", i, text)
			}
		}
		c.gone(5 * time.Second)
		s2.nothingSpooled("relay refusals")
	})
}

// TestEndlessDATA: content that never ends is cut at max_message_bytes
// (552) and the session ends within the timeouts, memory bounded.
func TestEndlessDATA(t *testing.T) {
	s := start(t, "max_message_bytes = 1000000\ncommand_timeout = \"2s\"\ndata_timeout = \"3s\"\nsession_timeout = \"10s\"")
	for _, shape := range []string{"lines", "no newline"} {
		c := s.dial()
		c.Cmd("EHLO client.example", 250)
		c.Cmd("MAIL FROM:<a@client.example>", 250)
		c.Cmd("RCPT TO:<b@remote.example>", 250)
		c.Cmd("DATA", 354)
		stop := make(chan struct{})
		go func() {
			chunk := bytes.Repeat([]byte("endless data endless data endless data endless data\r\n"), 1000)
			if shape == "no newline" {
				chunk = bytes.Repeat([]byte("e"), 64<<10)
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.Conn.Write(chunk); err != nil && !isTimeout(err) {
					return
				}
			}
		}()
		start := time.Now()
		// Lines: the size limit (552). One endless line: the line limit
		// comes first (554 5.6.0).
		if code, text := c.Reply(); !strings.HasPrefix(text, "552") && !(shape == "no newline" && strings.HasPrefix(text, "554 5.6.0")) {
			t.Errorf("endless DATA (%s): got %d %q", shape, code, text)
		}
		c.peak("endless DATA, " + shape)
		c.gone(10 * time.Second)
		close(stop)
		if el := time.Since(start); el > 12*time.Second {
			t.Errorf("endless DATA (%s) held smtp-bs for %v", shape, el)
		}
	}
	s.nothingSpooled("endless DATA")
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestReadOnlySpool: when the run user cannot write the spool, the client
// hears 451 4.3.0 and may retry; nothing is left behind.
func TestReadOnlySpool(t *testing.T) {
	testenv.NeedRoot(t, "to make the spool unwritable for the run user")
	s := start(t, "")
	os.Chmod(filepath.Join(s.env.SpoolDir, "tmp"), 0o500)
	defer os.Chmod(filepath.Join(s.env.SpoolDir, "tmp"), 0o700)
	c := s.dial()
	c.Cmd("EHLO client.example", 250)
	c.Cmd("MAIL FROM:<a@client.example>", 250)
	c.Cmd("RCPT TO:<b@remote.example>", 250)
	c.Cmd("DATA", 354)
	c.Send("Subject: ro\r\n\r\nx\r\n.\r\n")
	c.expectPrefix("451 4.3.0")
	c.Cmd("QUIT", 221)
	s.nothingSpooled("read-only spool")
}

// TestNothingAfter421: commands pipelined behind the one that reached
// max_errors are neither answered nor acted on. The red team's case: ten
// refused RCPTs, then RSET, MAIL, RCPT, DATA and a message in the same
// write got 250/250/250/354 after the 421.
func TestNothingAfter421(t *testing.T) {
	s := start(t, "relay_networks = []\nmax_errors = 10")
	e := s.env
	e.Extra["local"] = "domains = [\"mx.test.example\"]\n"
	e.WriteConfig()
	c := s.dial()
	c.Cmd("EHLO client.example", 250)
	c.Cmd("MAIL FROM:<a@client.example>", 250)
	var b bytes.Buffer
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "RCPT TO:<r%d@remote.example>\r\n", i)
	}
	b.WriteString("RSET\r\nMAIL FROM:<a@client.example>\r\nRCPT TO:<postmaster@mx.test.example>\r\nDATA\r\nSubject: after 421\r\n\r\nx\r\n.\r\nQUIT\r\n")
	c.Conn.Write(b.Bytes())
	for i := 0; i < 9; i++ {
		c.expectPrefix("554")
	}
	c.expectPrefix("421")
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, _ := io.ReadAll(c.Conn); len(rest) > 0 {
		t.Errorf("answered after the 421: %q", rest)
	}
	c.gone(5 * time.Second)
	s.nothingSpooled("commands pipelined after the 421")
}
