package mailbox

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/spool"
)

type boxMsg struct {
	FromLine    string `json:"from_line"`
	Subject     string `json:"subject"`
	ReturnPath  string `json:"return_path"`
	DeliveredTo string `json:"delivered_to"`
	Body        string `json:"body"`
}

// readBox reads a mailbox back with Python's mailbox module.
func readBox(t *testing.T, kind, path string) []boxMsg {
	t.Helper()
	py := testenv.NeedPython(t, "python3", "mailbox", "json")
	out, err := exec.Command(py, "testdata/readbox.py", kind, path).CombinedOutput()
	if err != nil {
		t.Fatalf("readbox.py: %v\n%s", err, out)
	}
	var msgs []boxMsg
	if err := json.Unmarshal(out, &msgs); err != nil {
		t.Fatalf("readbox.py: %v\n%s", err, out)
	}
	return msgs
}

func msg(subject, body string) []byte {
	return []byte("Received: from x\r\n\tby y; date\r\nSubject: " + subject + "\r\n\r\n" + body)
}

func TestMboxAppendReadBackByPython(t *testing.T) {
	box := filepath.Join(t.TempDir(), "alice")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	bodies := []string{
		"plain\r\n",
		"From the start of a line\r\n>From already quoted\r\nnot From here\r\n",
		"no final newline",
		"",
	}
	for i, b := range bodies {
		hdr := localHeader("sender@example.org", "alice@mx.example")
		if err := AppendMbox(box, MboxOptions{UID: -1}, "sender@example.org", hdr, bytes.NewReader(msg("m"+string(rune('0'+i)), b)), now); err != nil {
			t.Fatal(err)
		}
	}
	got := readBox(t, "mbox", box)
	if len(got) != len(bodies) {
		t.Fatalf("python reads %d messages, want %d", len(got), len(bodies))
	}
	for i, m := range got {
		if m.Subject != "m"+string(rune('0'+i)) || m.ReturnPath != "<sender@example.org>" || m.DeliveredTo != "alice@mx.example" {
			t.Errorf("message %d: %+v", i, m)
		}
		if !strings.HasPrefix(m.FromLine, "sender@example.org Sun Nov 22 10:00:00 2026") {
			t.Errorf("From_ line %q", m.FromLine)
		}
	}
	if !strings.Contains(got[1].Body, ">From the start") || !strings.Contains(got[1].Body, ">>From already quoted") || strings.Contains(got[1].Body, "\r") {
		t.Errorf("mboxrd quoting or LF conversion wrong: %q", got[1].Body)
	}
	fi, _ := os.Stat(box)
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("new mailbox mode %v, want 0660", fi.Mode().Perm())
	}
}

// TestMboxWaitsForAnotherLocker: a separate process holds the dot-lock
// (as mutt or procmail would); the append waits for it, and gives up with
// a temporary error if it is held too long.
func TestMboxWaitsForAnotherLocker(t *testing.T) {
	sh := testenv.Need(t, "sh")
	dir := t.TempDir()
	box := filepath.Join(dir, "bob")
	holder := exec.Command(sh, "-c", "set -C; echo $$ > bob.lock && sleep 1 && rm -f bob.lock")
	holder.Dir = dir
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Wait()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(box + ".lock"); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := AppendMbox(box, MboxOptions{UID: -1}, "s@x", nil, bytes.NewReader(msg("waited", "x\r\n")), time.Now()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("append did not wait for the lock holder (%v)", d)
	}
	if _, err := os.Stat(box + ".lock"); err == nil {
		t.Error("our dot-lock was left behind")
	}
	// A lock that is never released: temporary failure, mailbox untouched.
	os.WriteFile(box+".lock", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o444) // a live holder
	before, _ := os.ReadFile(box)
	err := AppendMbox(box, MboxOptions{UID: -1, LockWait: time.Second}, "s@x", nil, bytes.NewReader(msg("blocked", "x\r\n")), time.Now())
	if !IsTemp(err) {
		t.Fatalf("held lock: err %v, want temporary", err)
	}
	after, _ := os.ReadFile(box)
	if !bytes.Equal(before, after) {
		t.Error("mailbox changed although the lock was not ours")
	}
	// A lock whose holder is gone is taken over at once.
	os.WriteFile(box+".lock", []byte("2147483000\n"), 0o444)
	if err := AppendMbox(box, MboxOptions{UID: -1, LockWait: time.Second}, "s@x", nil, bytes.NewReader(msg("dead", "x\r\n")), time.Now()); err != nil {
		t.Fatalf("lock of a dead process not taken over: %v", err)
	}
	os.WriteFile(box+".lock", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o444)
	// A stale lock (older than 5 minutes) is taken over.
	old := time.Now().Add(-10 * time.Minute)
	os.Chtimes(box+".lock", old, old)
	if err := AppendMbox(box, MboxOptions{UID: -1}, "s@x", nil, bytes.NewReader(msg("stale", "x\r\n")), time.Now()); err != nil {
		t.Fatalf("stale lock not taken over: %v", err)
	}
	if n := len(readBox(t, "mbox", box)); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func TestMboxRollsBackAFailedAppend(t *testing.T) {
	box := filepath.Join(t.TempDir(), "carol")
	AppendMbox(box, MboxOptions{UID: -1}, "s@x", nil, bytes.NewReader(msg("first", "ok\r\n")), time.Now())
	before, _ := os.ReadFile(box)
	err := AppendMbox(box, MboxOptions{UID: -1}, "s@x", nil, &failingReader{n: 100000}, time.Now())
	if err == nil {
		t.Fatal("append from a failing reader succeeded")
	}
	after, _ := os.ReadFile(box)
	if !bytes.Equal(before, after) {
		t.Errorf("failed append left %d bytes behind", len(after)-len(before))
	}
}

func TestMboxRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o600)
	os.Symlink(target, filepath.Join(dir, "sym"))
	os.Link(target, filepath.Join(dir, "hard"))
	for _, name := range []string{"sym", "hard"} {
		err := AppendMbox(filepath.Join(dir, name), MboxOptions{UID: -1}, "s@x", nil, bytes.NewReader(msg("x", "x\r\n")), time.Now())
		if err == nil || IsTemp(err) {
			t.Errorf("%s: err %v, want a permanent refusal", name, err)
		}
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Error("wrote through a link")
	}
}

func TestMaildirReadBackByPython(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dave")
	for _, s := range []string{"one", "two"} {
		if err := DeliverMaildir(dir, "mx.example", localHeader("s@x", "dave@mx"), bytes.NewReader(msg(s, "body "+s+"\r\n")), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	got := readBox(t, "maildir", dir)
	subjects := map[string]bool{}
	for _, m := range got {
		subjects[m.Subject] = true
	}
	if len(got) != 2 || !subjects["one"] || !subjects["two"] {
		t.Errorf("maildir read back: %+v", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Error("tmp/ not empty")
	}
}

// lmtpBackend is a real LMTP server (go-smtp in LMTP mode) that refuses
// recipients named "full" per recipient after DATA.
type lmtpBackend struct{ got []string }

type lmtpSess struct {
	b     *lmtpBackend
	rcpts []string
}

func (b *lmtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &lmtpSess{b: b}, nil }
func (s *lmtpSess) Mail(string, *smtp.MailOptions) error           { return nil }
func (s *lmtpSess) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "nouser") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *lmtpSess) Data(r io.Reader) error { return nil }
func (s *lmtpSess) LMTPData(r io.Reader, st smtp.StatusCollector) error {
	io.Copy(io.Discard, r)
	for _, rc := range s.rcpts {
		if strings.HasPrefix(rc, "full") {
			st.SetStatus(rc, &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "over quota"})
			continue
		}
		s.b.got = append(s.b.got, rc)
		st.SetStatus(rc, nil)
	}
	return nil
}
func (s *lmtpSess) Reset()        { s.rcpts = nil }
func (s *lmtpSess) Logout() error { return nil }

func TestLMTPPerRecipient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	be := &lmtpBackend{}
	srv := smtp.NewServer(be)
	srv.LMTP, srv.Domain = true, "lmtp.test"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	errs, err := DeliverLMTP(context.Background(), "unix:"+sock, "mx.example", "s@x", []string{"ok@mx", "full@mx", "nouser@mx"}, false, 10,
		bytes.NewReader(msg("lmtp", "x\r\n")), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || !IsTemp(errs[1]) || errs[2] == nil || IsTemp(errs[2]) {
		t.Errorf("per-recipient results %v", errs)
	}
	if len(be.got) != 1 || be.got[0] != "ok@mx" {
		t.Errorf("LMTP server stored %v", be.got)
	}
}

func TestProgramAllowList(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := "#!/bin/sh\ncat > " + out + "\necho \"$SENDER $RECIPIENT\" >> " + out + "\nexit ${1:-0}\n"
	os.WriteFile(filepath.Join(dir, "store"), []byte(script), 0o755)
	ctx := context.Background()
	env := []string{"SENDER=s@x", "RECIPIENT=r@y"}
	if err := RunProgram(ctx, dir, "/usr/local/bin/store", env, strings.NewReader("Subject: p\n\nhi\n"), 5*time.Second); err != nil {
		t.Fatalf("allowed program: %v", err)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "Subject: p") || !strings.Contains(string(b), "s@x r@y") {
		t.Errorf("program got %q", b)
	}
	if err := RunProgram(ctx, dir, "store 75", env, strings.NewReader("x"), 5*time.Second); !IsTemp(err) {
		t.Errorf("exit 75: %v, want temporary", err)
	}
	if err := RunProgram(ctx, dir, "store 1", env, strings.NewReader("x"), 5*time.Second); err == nil || IsTemp(err) {
		t.Errorf("exit 1: %v, want permanent", err)
	}
	for _, cmd := range []string{"/bin/sh -c id", "../../bin/sh", "rm -rf /"} {
		if err := RunProgram(ctx, dir, cmd, env, strings.NewReader("x"), 5*time.Second); err == nil || IsTemp(err) {
			t.Errorf("%q outside the allow-list: %v", cmd, err)
		}
	}
	if err := RunProgram(ctx, "", "store", env, strings.NewReader("x"), time.Second); err == nil {
		t.Error("program deliveries must be refused without program_dir")
	}
	os.WriteFile(filepath.Join(dir, "slow"), []byte("#!/bin/sh\nsleep 10\n"), 0o755)
	if err := RunProgram(ctx, dir, "slow", env, strings.NewReader("x"), 300*time.Millisecond); !IsTemp(err) {
		t.Errorf("timeout: %v, want temporary", err)
	}
}

// lmtpRecorder is a real LMTP server (go-smtp in LMTP mode) that keeps
// what it is given.
type lmtpRecorder struct {
	mu   sync.Mutex
	data []string
}

type lmtpRecSess struct {
	b     *lmtpRecorder
	rcpts []string
}

func (b *lmtpRecorder) NewSession(*smtp.Conn) (smtp.Session, error) { return &lmtpRecSess{b: b}, nil }
func (s *lmtpRecSess) Mail(string, *smtp.MailOptions) error         { return nil }
func (s *lmtpRecSess) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *lmtpRecSess) Data(r io.Reader) error { return nil }
func (s *lmtpRecSess) LMTPData(r io.Reader, st smtp.StatusCollector) error {
	b, _ := io.ReadAll(r)
	s.b.mu.Lock()
	s.b.data = append(s.b.data, string(b))
	s.b.mu.Unlock()
	for _, rc := range s.rcpts {
		st.SetStatus(rc, nil)
	}
	return nil
}
func (s *lmtpRecSess) Reset()        { s.rcpts = nil }
func (s *lmtpRecSess) Logout() error { return nil }

// Over LMTP the server does the final delivery and adds Return-Path and
// Delivered-To itself (Dovecot does): qrun adds none, so there are not two
// of each. A UTF-8 sender to an LMTP server without SMTPUTF8 bounces at
// once (5.6.7), as on the SMTP path, instead of waiting for expiry.
func TestLMTPHeadersAndSMTPUTF8(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	be := &lmtpRecorder{}
	srv := smtp.NewServer(be)
	srv.LMTP, srv.Domain = true, "lmtp.test" // no SMTPUTF8 offered
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	cfg := config.Default()
	cfg.Hostname = "mx.example"
	cfg.Local.Domains = []string{"example.org"}
	cfg.Local.Mailbox, cfg.Local.LMTP = "lmtp", "unix:"+sock
	loc := &Local{Config: cfg}
	body := msg("lmtp", "x\r\n")
	env := &spool.Envelope{ID: "Q1", From: "s@example.net", Rcpts: []string{"ann@example.org"}, Size: int64(len(body))}
	res := loc.Deliver(context.Background(), loc.Route("ann@example.org"), env, []int{0}, bytes.NewReader(body))
	if res[0].Status != spool.Sent {
		t.Fatalf("ASCII sender: %+v", res[0])
	}
	be.mu.Lock()
	got := be.data
	be.mu.Unlock()
	if len(got) != 1 || strings.Contains(got[0], "Return-Path:") || strings.Contains(got[0], "Delivered-To:") || got[0] != string(body) {
		t.Errorf("the LMTP server got %q, want the message as queued %q", got, body)
	}
	env = &spool.Envelope{ID: "Q2", From: "zoë@example.net", Rcpts: []string{"ann@example.org"}, Size: int64(len(body)), UTF8: true}
	res = loc.Deliver(context.Background(), loc.Route("ann@example.org"), env, []int{0}, bytes.NewReader(body))
	if res[0].Status != spool.Failed || !strings.Contains(res[0].Reply, "5.6.7") {
		t.Errorf("UTF-8 sender to an LMTP server without SMTPUTF8: %+v", res[0])
	}
}
