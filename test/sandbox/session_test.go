// Package sandbox_test starts the real programs under the launchers most
// installs use (xinetd, tcpserver; not systemd, whose own sandbox is
// tested in test/launchers) and plays what an exploit would do inside
// the confined process, through the failpoint build's probe (see
// pkg/sandbox/probe_failpoint.go): each attempt must be refused as the
// design says, nothing must be written, and the other sessions must not
// notice.
package sandbox_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/sandbox"
)

func needSandbox(t *testing.T) {
	t.Helper()
	if l := sandbox.Available(); !l.Full() {
		testenv.Missing(t, "this kernel cannot confine fully: "+l.String(), "a kernel with Landlock ABI 4+ and seccomp (not a Debian package)")
	}
}

// probeWorld is what the attempts aim at: files that user mail could
// read or write by their permissions alone, so that only the sandbox
// stands in the way, and a TCP port that is not a milter.
type probeWorld struct {
	dir      string // SMTPBS_SANDBOX_PROBE_DIR
	other    string // another user's file, world-readable
	outside  string // a world-writable directory outside the spool
	listener net.Listener
	n        int
}

func newWorld(t *testing.T, env *testenv.Env) *probeWorld {
	t.Helper()
	w := &probeWorld{
		dir:     filepath.Join(env.Dir, "probe"),
		other:   filepath.Join(env.Dir, "other", "secret"),
		outside: filepath.Join(env.Dir, "outside"),
	}
	for _, d := range []string{w.dir, filepath.Dir(w.other), w.outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(w.dir, 0o777)
	os.Chmod(w.outside, 0o777)
	if err := os.WriteFile(w.other, []byte("root's secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w.listener = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return w
}

func (w *probeWorld) port() int { return w.listener.Addr().(*net.TCPAddr).Port }

// arm leaves a probe for the next process to start; it returns the
// result file's path.
func (w *probeWorld) arm(t *testing.T, attempts ...string) string {
	t.Helper()
	w.n++
	base := filepath.Join(w.dir, fmt.Sprintf("%02d", w.n))
	if err := os.WriteFile(base+".probe", []byte(strings.Join(attempts, ",")), 0o644); err != nil {
		t.Fatal(err)
	}
	return base + ".out"
}

// results reads a result file: attempt -> result, "" for an attempt tried
// and never returned from.
func results(t *testing.T, out string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no probe results (%v): the probe did not run", err)
	}
	r := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if a, ok := strings.CutSuffix(l, " try"); ok {
			r[a] = ""
		} else if a, res, ok := strings.Cut(l, " = "); ok {
			r[a] = res
		}
	}
	return r
}

// dead says EHLO, waits for the server to close a connection that a
// killed session held, and returns what it had sent.
func dead(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	// After the greeting (a command before it is an early talker's), if
	// the greeting comes before the probe.
	greeting := make([]byte, 512)
	n, _ := c.Read(greeting)
	greeting = greeting[:n]
	if n > 0 {
		io.WriteString(c, "EHLO attacker.test\r\n")
	}
	b, err := io.ReadAll(c)
	b = append(greeting, b...)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil // killed with our EHLO unread: the kernel resets
	}
	if err != nil {
		t.Fatalf("the connection of a session that should have died stayed open: %v (read %q)", err, b)
	}
	return string(b)
}

// exploitSessions is the scenario for one launcher listening on addr.
func exploitSessions(t *testing.T, env *testenv.Env, w *probeWorld, addr string) {
	// A session in flight, started before the attacks: it must not notice.
	inflight := testenv.Dial(t, addr, 220)
	inflight.Cmd("EHLO inflight.test", 250)
	inflight.Cmd("MAIL FROM:<a@inflight.test>", 250)
	inflight.Cmd("RCPT TO:<b@elsewhere.example>", 250)

	// Reads, a write, a connect: refused with EACCES, and the session,
	// still alive, serves its client.
	passwd, other := "read:/etc/passwd", "read:"+w.other
	write, connect := "write:"+filepath.Join(w.outside, "planted"), fmt.Sprintf("connect:%d", w.port())
	// The spool is mail's, but a session has no business in data/.
	spoolParent := "write:" + filepath.Join(env.SpoolDir, "data", "planted")
	out := w.arm(t, passwd, other, write, spoolParent, connect)
	d := testenv.Dial(t, addr, 220)
	// The greeting may come before the sandbox (smtp-bs greets early);
	// the reply to the first command cannot.
	d.Cmd("EHLO attacker.test", 250)
	r := results(t, out)
	for _, a := range []string{passwd, other, write, spoolParent, connect} {
		if r[a] != "EACCES" {
			t.Errorf("%s: %q, want EACCES (refused by Landlock)", a, r[a])
		}
	}
	d.Cmd("MAIL FROM:<x@attacker.test>", 250)
	d.Cmd("RCPT TO:<y@elsewhere.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("Subject: after the probes\r\n\r\nstill served\r\n.\r\n")
	d.Expect(250)
	d.Cmd("QUIT", 221)

	// exec and ptrace: the process dies at the call, before it answers
	// the client's first command; nothing after the call runs (no result
	// line, no shell output).
	for _, a := range []string{"exec:/bin/sh", "ptrace:parent"} {
		out := w.arm(t, a)
		got := dead(t, addr)
		if strings.Contains(got, "250") || strings.Contains(got, "escaped") {
			t.Errorf("%s: the session went on: %q", a, got)
		}
		if res, ok := results(t, out)[a]; !ok || res != "" {
			t.Errorf("%s: returned %q; want the process killed in the call", a, res)
		}
	}

	inflight.Cmd("DATA", 354)
	inflight.Send("Subject: in flight\r\n\r\nunaffected\r\n.\r\n")
	inflight.Expect(250)
	inflight.Cmd("QUIT", 221)

	for _, p := range []string{filepath.Join(w.outside, "planted"), filepath.Join(env.SpoolDir, "data", "planted")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
	subjects := map[string]bool{}
	for _, id := range env.Queued() {
		_, data := env.Message(id)
		sc := bufio.NewScanner(strings.NewReader(data))
		for sc.Scan() {
			if s, ok := strings.CutPrefix(sc.Text(), "Subject: "); ok {
				subjects[s] = true
			}
		}
	}
	if !subjects["in flight"] || !subjects["after the probes"] || len(subjects) != 2 {
		t.Errorf("queued: %v; want the in-flight message and the probed session's", subjects)
	}
	if !strings.Contains(env.Log(), "queued") {
		t.Error("nothing logged as queued")
	}
}

func TestSessionUnderXinetd(t *testing.T) {
	needSandbox(t)
	xinetd := testenv.Need(t, "xinetd")
	testenv.NeedRoot(t, "xinetd runs sessions as mail only when started as root")
	env := testenv.New(t)
	w := newWorld(t, env)
	addr := testenv.FreePort(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(env.Dir, "xinetd.conf")
	entry := fmt.Sprintf(`service smtp-bs-sandbox
{
	type = UNLISTED
	socket_type = stream
	protocol = tcp
	wait = no
	user = mail
	group = mail
	bind = 127.0.0.1
	port = %s
	server = %s
	server_args = -config %s
	env = SMTPBS_SANDBOX_PROBE_DIR=%s
	flags = NOLIBWRAP
	cps = 1000 1
	instances = 50
}
`, port, testenv.FailpointBin(t, "smtp-bs"), env.CfgFile, w.dir)
	if err := os.WriteFile(conf, []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, xinetd, "-dontfork", "-filelog", filepath.Join(env.Dir, "xinetd.log"), "-f", conf)
	testenv.WaitListen(t, addr)
	exploitSessions(t, env, w, addr)
}

func TestSessionUnderTcpserver(t *testing.T) {
	needSandbox(t)
	env := testenv.New(t)
	w := newWorld(t, env)
	addr := tcpserverEnv(t, env, "SMTPBS_SANDBOX_PROBE_DIR="+w.dir)
	exploitSessions(t, env, w, addr)
}

func mailIDs(t *testing.T) (string, string) {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 3 && f[0] == "mail" {
			return f[2], f[3]
		}
	}
	t.Fatal("no user mail")
	return "", ""
}
