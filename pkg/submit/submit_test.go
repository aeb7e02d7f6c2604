package submit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/pkg/config"
)

// mta is an in-process go-smtp server on 127.0.0.1 that records what it is
// handed and refuses what a test tells it to.
type mta struct {
	addr string
	mu   sync.Mutex
	got  []*txn
	// rcptErr, keyed by recipient, is the reply to RCPT TO.
	rcptErr map[string]*smtp.SMTPError
	mailErr *smtp.SMTPError
	dataErr *smtp.SMTPError
}

type txn struct {
	from  string
	opts  smtp.MailOptions
	rcpts []string
	data  []byte
}

func newMTA(t *testing.T, utf8 bool) *mta {
	t.Helper()
	return newMTAWith(t, func(s *smtp.Server) { s.EnableSMTPUTF8 = utf8 })
}

// newMTAWith is newMTA with settings of go-smtp's server.
func newMTAWith(t *testing.T, set func(*smtp.Server)) *mta {
	t.Helper()
	m := &mta{rcptErr: map[string]*smtp.SMTPError{}}
	s := smtp.NewServer(m)
	s.Domain = "greeting.example"
	set(s)
	s.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return m
}

func (m *mta) NewSession(*smtp.Conn) (smtp.Session, error) { return &mtaSession{m: m}, nil }

func (m *mta) txns() []*txn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*txn(nil), m.got...)
}

type mtaSession struct {
	m   *mta
	cur *txn
}

func (s *mtaSession) Mail(from string, opts *smtp.MailOptions) error {
	if s.m.mailErr != nil {
		return s.m.mailErr
	}
	s.cur = &txn{from: from, opts: *opts}
	return nil
}

func (s *mtaSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.m.rcptErr[to]; e != nil {
		return e
	}
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *mtaSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.m.dataErr != nil {
		return s.m.dataErr
	}
	s.cur.data = b
	s.m.mu.Lock()
	s.m.got = append(s.m.got, s.cur)
	s.m.mu.Unlock()
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "OK: queued as TEST1"}
}

func (s *mtaSession) Reset()        { s.cur = nil }
func (s *mtaSession) Logout() error { return nil }

var fixedNow = time.Date(2024, 3, 5, 6, 7, 8, 0, time.FixedZone("", 3600))

// env hands submissions to addr as user alice (full name from GECOS).
func testEnv(addr string) Env {
	return Env{
		Settings:  Settings{SubmitTo: addr, MaxBytes: 1 << 20},
		User:      func() (string, string, error) { return "alice", "Alice Liddell", nil },
		LocalName: "client.example",
		Now:       func() time.Time { return fixedNow },
		Timeout:   5 * time.Second,
	}
}

func submit(t *testing.T, env Env, args, in string) (*Result, error) {
	t.Helper()
	o, err := Parse("sendmail", strings.Fields(args))
	if err != nil {
		t.Fatal(err)
	}
	return Submit(context.Background(), o, env, strings.NewReader(in))
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Code
	}
	return -1
}

// header returns the first value of name in a delivered message.
func header(data []byte, name string) string {
	head, _, _ := strings.Cut(string(data), "\r\n\r\n")
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestCronStyle(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	env.Hostname = "host.example"
	// What Debian's cron writes: LF endings, headers only when a job
	// prints nothing but its exit status is reported.
	in := "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> /bin/true\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\nX-Cron-Env: <SHELL=/bin/sh>\n"
	res, err := submit(t, env, "-FCronDaemon -i -odi -oem -oi -t", in)
	if err != nil {
		t.Fatal(err)
	}
	got := m.txns()
	if len(got) != 1 || got[0].from != "alice@host.example" || strings.Join(got[0].rcpts, ",") != "root@host.example" {
		t.Fatalf("envelope: %+v", got)
	}
	d := got[0].data
	if !cleanCRLF(d) {
		t.Errorf("not clean CRLF: %q", d)
	}
	// Its own From: and To: are kept, qualified with the hostname (a
	// reader elsewhere could not answer "root").
	if header(d, "From") != "root@host.example (Cron Daemon)" || header(d, "To") != "root@host.example" {
		t.Errorf("From: %q, To: %q; want them qualified", header(d, "From"), header(d, "To"))
	}
	if header(d, "Date") != "Tue, 05 Mar 2024 06:07:08 +0100" {
		t.Errorf("Date: %q", header(d, "Date"))
	}
	if id := header(d, "Message-ID"); !strings.HasPrefix(id, "<20240305050708.") || !strings.HasSuffix(id, "@host.example>") {
		t.Errorf("Message-ID: %q", id)
	}
	if got[0].opts.Body != smtp.Body8BitMIME || got[0].opts.UTF8 {
		t.Errorf("MAIL options: %+v", got[0].opts)
	}
	if res.Reply != "2.0.0 OK: queued as TEST1" {
		t.Errorf("reply %q", res.Reply)
	}
}

func TestArgumentsAndHeaders(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	env.Hostname = "host.example"
	in := "Subject: hello\n\nçà: 8-bit body\n"
	if _, err := submit(t, env, "-F Alice_Q. bob carol@Remote.Example, bob@HOST.example", in); err != nil {
		t.Fatal(err)
	}
	got := m.txns()[0]
	// bob twice (qualified, domain in another case) gets one copy.
	if strings.Join(got.rcpts, ",") != "bob@host.example,carol@Remote.Example" {
		t.Errorf("rcpts %q", got.rcpts)
	}
	if f := header(got.data, "From"); f != `"Alice_Q." <alice@host.example>` {
		t.Errorf("From: %q", f)
	}
	if !strings.HasSuffix(string(got.data), "\r\n\r\nçà: 8-bit body\r\n") {
		t.Errorf("body: %q", got.data)
	}
	// Without -F, the GECOS name.
	submit(t, env, "dave", in)
	if f := header(m.txns()[1].data, "From"); f != `Alice Liddell <alice@host.example>` {
		t.Errorf("From: %q", f)
	}
}

func TestSender(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	env.Hostname = "host.example"
	env.User = func() (string, string, error) { return "", "", errors.New("who?") }
	// -f gives both the envelope sender and From:, and then nobody needs
	// to know who we are.
	if _, err := submit(t, env, "-f backup -F Nightly_Backup root", "Subject: x\n\nok\n"); err != nil {
		t.Fatal(err)
	}
	got := m.txns()[0]
	if got.from != "backup@host.example" || header(got.data, "From") != "Nightly_Backup <backup@host.example>" {
		t.Errorf("from %q, From: %q", got.from, header(got.data, "From"))
	}
	// With a From: in the message, -F is not used.
	submit(t, env, "-r <bounce@x.example> -F Ignored root", "From: Real <real@x.example>\n\nok\n")
	got = m.txns()[1]
	if got.from != "bounce@x.example" || header(got.data, "From") != "Real <real@x.example>" {
		t.Errorf("from %q, From: %q", got.from, header(got.data, "From"))
	}
	// The null sender.
	submit(t, env, "-f <> root", "From: a@b\n\nok\n")
	if got := m.txns()[2]; got.from != "" {
		t.Errorf("from %q, want <>", got.from)
	}
	// Nobody known and no -f: 67, as sendmail's "who are you?".
	_, err := submit(t, env, "root", "Subject: x\n")
	if exitCode(err) != ExNoUser || !strings.Contains(err.Error(), "-f") {
		t.Errorf("unknown user: %v", err)
	}
}

func TestBccRemoved(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	env.Hostname = "host.example"
	in := "To: Ann <ann@x.example>\nCc: ben@x.example,\n  cat@x.example\nBcc: secret@y.example\nBcc: hidden@y.example\nSubject: t\n\nbody\n"
	if _, err := submit(t, env, "-t -i extra@z.example", in); err != nil {
		t.Fatal(err)
	}
	got := m.txns()[0]
	want := "extra@z.example,ann@x.example,ben@x.example,cat@x.example,secret@y.example,hidden@y.example"
	if strings.Join(got.rcpts, ",") != want {
		t.Errorf("rcpts %q\nwant %q", got.rcpts, want)
	}
	if strings.Contains(strings.ToLower(string(got.data)), "bcc") || strings.Contains(string(got.data), "secret@") {
		t.Errorf("Bcc: left in the message:\n%s", got.data)
	}
	// Without -t, Bcc: is removed too, and its addresses get nothing.
	submit(t, env, "ann@x.example", in)
	got = m.txns()[1]
	if strings.Join(got.rcpts, ",") != "ann@x.example" || strings.Contains(string(got.data), "secret@") {
		t.Errorf("without -t: rcpts %q, data %q", got.rcpts, got.data)
	}
}

// "Bcc :" (white space before the colon, RFC 5322 4.5) is a Bcc field
// too: read as the start of the body it showed its addresses to every
// recipient and pushed Subject: into the body (found by a red-team run).
// Resent-Bcc: is removed as well.
func TestObsoleteBccRemoved(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	env.Hostname = "host.example"
	in := "To: t1@x.example\nBcc : secret@y.example\nResent-Bcc:\tother@y.example\nSubject : obs bcc\n\nbody\n"
	if _, err := submit(t, env, "-t", in); err != nil {
		t.Fatal(err)
	}
	got := m.txns()[0]
	if strings.Join(got.rcpts, ",") != "t1@x.example,secret@y.example" {
		t.Errorf("rcpts %q", got.rcpts)
	}
	data := string(got.data)
	hdr, body, _ := strings.Cut(data, "\r\n\r\n")
	if strings.Contains(data, "secret@") || strings.Contains(data, "other@") || !strings.Contains(hdr, "Subject : obs bcc") || body != "body\r\n" {
		t.Errorf("sent:\n%s", data)
	}
}

// More recipients than the server takes in one transaction go out in
// several: LIMITS RCPTMAX as advertised, or a 452 after some recipients
// were accepted (RFC 5321 4.5.3.1.10). Refusing them all with 75 made
// such a message impossible to send (found by a red-team run).
func TestRecipientsInBatches(t *testing.T) {
	m := newMTAWith(t, func(s *smtp.Server) { s.MaxRecipients = 3 })
	env := testEnv(m.addr)
	var rcpts []string
	for i := 1; i <= 7; i++ {
		rcpts = append(rcpts, fmt.Sprintf("r%d@x.example", i))
	}
	m.rcptErr["r2@x.example"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	res, err := submit(t, env, strings.Join(rcpts, " "), "Subject: many\n\nbody\n")
	if exitCode(err) != ExNoUser || res == nil || len(res.Accepted) != 6 {
		t.Fatalf("result %+v, error %v", res, err)
	}
	var batches []string
	for _, tx := range m.txns() {
		batches = append(batches, strings.Join(tx.rcpts, ","))
	}
	want := []string{"r1@x.example,r3@x.example", "r4@x.example,r5@x.example,r6@x.example", "r7@x.example"}
	if !reflect.DeepEqual(batches, want) {
		t.Errorf("transactions %q, want %q", batches, want)
	}

	// Without LIMITS: a 452 after accepted recipients ends the batch. A
	// 452 to the first recipient of a transaction is a temporary failure,
	// and the error says who got the message already.
	m2 := newMTA(t, false)
	m2.rcptErr["r3@x.example"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
	_, err = submit(t, testEnv(m2.addr), strings.Join(rcpts[:4], " "), "Subject: many\n\nbody\n")
	if exitCode(err) != ExTempFail || !strings.Contains(err.Error(), "to r1@x.example, r2@x.example") || !strings.Contains(err.Error(), "not sent to the rest") {
		t.Fatalf("error %v", err)
	}
	if got := m2.txns(); len(got) != 1 || strings.Join(got[0].rcpts, ",") != "r1@x.example,r2@x.example" {
		t.Errorf("transactions %+v", got)
	}

	// Any other 452 (a full mailbox, 4.2.2) is a temporary failure of the
	// whole message, as before: nobody gets it yet, so a retry makes no
	// duplicates.
	m3 := newMTA(t, false)
	m3.rcptErr["r2@x.example"] = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
	_, err = submit(t, testEnv(m3.addr), strings.Join(rcpts[:3], " "), "Subject: many\n\nbody\n")
	if exitCode(err) != ExTempFail || len(m3.txns()) != 0 {
		t.Errorf("a full mailbox: error %v, %d transactions", err, len(m3.txns()))
	}
}

func TestDotLine(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	in := "Subject: dots\n\nbefore\n.\nafter\n..\n"
	submit(t, env, "a@x.example", in)
	submit(t, env, "-i a@x.example", in)
	submit(t, env, "-oi a@x.example", in)
	got := m.txns()
	if len(got) != 3 {
		t.Fatalf("%d messages", len(got))
	}
	if !strings.HasSuffix(string(got[0].data), "\r\n\r\nbefore\r\n") {
		t.Errorf("without -i the lone dot must end the input: %q", got[0].data)
	}
	for _, g := range got[1:] {
		if !strings.HasSuffix(string(g.data), "\r\n\r\nbefore\r\n.\r\nafter\r\n..\r\n") {
			t.Errorf("with -i the dots are data: %q", g.data)
		}
	}
}

// Without a readable config the greeting names the host.
func TestHostnameFromGreeting(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	submit(t, env, "root", "Subject: x\n")
	got := m.txns()[0]
	if got.from != "alice@greeting.example" || got.rcpts[0] != "root@greeting.example" {
		t.Errorf("envelope %q -> %q", got.from, got.rcpts)
	}
}

func TestSMTPUTF8(t *testing.T) {
	m := newMTA(t, true)
	env := testEnv(m.addr)
	if _, err := submit(t, env, "jörg@bücher.example", "Subject: x\n"); err != nil {
		t.Fatal(err)
	}
	if got := m.txns()[0]; !got.opts.UTF8 {
		t.Errorf("SMTPUTF8 not given: %+v", got.opts)
	}
	submit(t, env, "ascii@x.example", "Subject: ü\n")
	if got := m.txns()[1]; got.opts.UTF8 {
		t.Errorf("SMTPUTF8 given for ASCII addresses: %+v", got.opts)
	}
	plain := newMTA(t, false)
	_, err := submit(t, testEnv(plain.addr), "jörg@bücher.example", "Subject: x\n")
	if exitCode(err) != ExUnavailable || len(plain.txns()) != 0 {
		t.Errorf("no SMTPUTF8 offered: %v", err)
	}
}

func TestNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = submit(t, testEnv(addr), "root", "Subject: x\n")
	want := "cannot hand the message to the mail system at " + addr + ": connection refused; it was not sent"
	if exitCode(err) != ExTempFail || err.Error() != want {
		t.Errorf("got %d %q\nwant 75 %q", exitCode(err), err, want)
	}
}

func TestRefusals(t *testing.T) {
	unknown := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	relay := &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
	busy := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try later"}
	full := &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Spool full"}
	bad := &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Bad message"}

	cases := []struct {
		name      string
		set       func(m *mta)
		rcpts     string
		code      int
		delivered string // recipients that got the message, "" none
		says      string
	}{
		{"unknown user, others get it", func(m *mta) { m.rcptErr["nobody@h.example"] = unknown }, "ok@h.example nobody@h.example",
			ExNoUser, "ok@h.example", "<nobody@h.example>: 550 5.1.1 No such user\nsendmail: the message was sent to the other recipients"},
		{"all unknown", func(m *mta) { m.rcptErr["nobody@h.example"] = unknown }, "nobody@h.example",
			ExNoUser, "", "no recipient was accepted; the message was not sent"},
		{"relay denied", func(m *mta) { m.rcptErr["x@remote.example"] = relay }, "ok@h.example x@remote.example",
			ExUnavailable, "ok@h.example", "554 5.7.1 Relay access denied"},
		{"unknown wins over relay", func(m *mta) { m.rcptErr["x@remote.example"] = relay; m.rcptErr["nobody@h.example"] = unknown }, "x@remote.example nobody@h.example",
			ExNoUser, "", "Relay access denied"},
		{"4xx on one recipient: nothing sent", func(m *mta) { m.rcptErr["later@h.example"] = busy }, "ok@h.example later@h.example",
			ExTempFail, "", "<later@h.example>: 451 4.3.0 Try later; the message was not sent (try again later)"},
		{"4xx to MAIL", func(m *mta) { m.mailErr = full }, "ok@h.example",
			ExTempFail, "", "452 4.3.1 Spool full"},
		{"5xx to MAIL", func(m *mta) { m.mailErr = bad }, "ok@h.example",
			ExDataErr, "", "the mail system refused the sender <alice@h.example>: 554 5.6.0 Bad message; it was not sent"},
		{"4xx after DATA", func(m *mta) { m.dataErr = busy }, "ok@h.example",
			ExTempFail, "", "451 4.3.0 Try later"},
		{"5xx after DATA", func(m *mta) { m.dataErr = bad }, "ok@h.example",
			ExDataErr, "", "the mail system refused the message: 554 5.6.0 Bad message; it was not sent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMTA(t, true)
			c.set(m)
			env := testEnv(m.addr)
			env.Hostname = "h.example"
			_, err := submit(t, env, c.rcpts, "Subject: x\n\nbody\n")
			if exitCode(err) != c.code || err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %d %v\nwant %d saying %q", exitCode(err), err, c.code, c.says)
			}
			var got []string
			for _, x := range m.txns() {
				got = append(got, x.rcpts...)
			}
			if strings.Join(got, " ") != c.delivered {
				t.Errorf("delivered to %q, want %q", got, c.delivered)
			}
		})
	}
}

// A greeting that is not 220 (smtp-bs says 421 on a config error, 554
// when tcpwrap refuses) is a temporary failure: the caller keeps the mail.
func TestBadGreeting(t *testing.T) {
	for _, greeting := range []string{"421 4.3.0 not now\r\n", "554 5.7.1 go away\r\n", ""} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := l.Accept()
			if err == nil {
				io.WriteString(c, greeting)
				c.Close()
			}
		}()
		_, err = submit(t, testEnv(l.Addr().String()), "root", "Subject: x\n")
		l.Close()
		if exitCode(err) != ExTempFail || !strings.Contains(err.Error(), "it was not sent") {
			t.Errorf("greeting %q: %v", greeting, err)
		}
	}
}

func TestNoRecipients(t *testing.T) {
	env := testEnv("127.0.0.1:1")
	for _, c := range []struct{ args, in string }{{"", "Subject: x\n"}, {"-t", "Subject: x\n"}, {"-t", "To: undisclosed-recipients:;\n"}} {
		if _, err := submit(t, env, c.args, c.in); exitCode(err) != ExUsage {
			t.Errorf("%q %q: %v, want 64", c.args, c.in, err)
		}
	}
	if _, err := submit(t, env, "-t", "To: <open\n"); exitCode(err) != ExDataErr {
		t.Errorf("bad To: %v, want 65", err)
	}
	if _, err := submit(t, env, `"open`, "Subject: x\n"); exitCode(err) != ExUsage {
		t.Errorf("bad argument: %v, want 64", err)
	}
}

func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	def, err := LoadSettings(filepath.Join(dir, "missing.toml"), false)
	if err != nil || def.SubmitTo != "127.0.0.1:25" || def.Hostname != "" || def.MaxBytes != UnknownMaxBytes || !def.Sandbox.Enabled {
		t.Errorf("missing default config: %+v %v", def, err)
	}
	if _, err := LoadSettings(filepath.Join(dir, "missing.toml"), true); exitCode(err) != ExConfig {
		t.Errorf("missing -C config: %v, want 78", err)
	}
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("hostname = \"mx.example\"\n[smtp]\nmax_message_bytes = 1000\n[local]\nsubmit_to = \"127.0.0.1:2525\"\n"), 0o644)
	s, err := LoadSettings(good, true)
	if err != nil || s != (Settings{Hostname: "mx.example", SubmitTo: "127.0.0.1:2525", MaxBytes: 1000, Sandbox: config.Sandbox{Enabled: true}}) {
		t.Errorf("good config: %+v %v", s, err)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[local]\nsubmit_to = \"nowhere\"\n"), 0o644)
	if _, err := LoadSettings(bad, true); exitCode(err) != ExConfig || !strings.Contains(err.Error(), "submit_to") {
		t.Errorf("bad config: %v, want 78 naming submit_to", err)
	}
	// Unreadable (root:mail 0640 to a user): at the default path the
	// defaults, silently; named with -C, 78 as for a missing file.
	if os.Geteuid() != 0 {
		os.Chmod(good, 0)
		s, err := LoadSettings(good, false)
		if err != nil || s.SubmitTo != "127.0.0.1:25" || s.Hostname != "" {
			t.Errorf("unreadable config: %+v %v", s, err)
		}
		if _, err := LoadSettings(good, true); exitCode(err) != ExConfig {
			t.Errorf("unreadable -C config: %v, want 78", err)
		}
	}
}
