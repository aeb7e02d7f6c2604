package checks

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/internal/testenv"
)

const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// rspamd is Debian's rspamd, its proxy worker alone in milter mode on
// 127.0.0.1, with contrib/rspamd/'s local.d files, and its DNS pointed at
// a server of the test's (no outside name resolves, so no map is fetched
// from outside either).
type rspamd struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

func startRspamd(t *testing.T) *rspamd {
	t.Helper()
	bin := testenv.Need(t, "rspamd")
	dns := dnstest.Start(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777) // the workers run as _rspamd
	local := filepath.Join(dir, "local.d")
	os.Mkdir(local, 0o755)
	for _, f := range []string{"worker-proxy.inc", "milter_headers.conf"} {
		b, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "rspamd", "local.d", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(local, f), b, 0o644)
	}
	// A test rule: a Subject of "softly" is soft-rejected.
	os.WriteFile(filepath.Join(dir, "soft.map"), []byte("/^softly$/\n"), 0o644)
	os.WriteFile(filepath.Join(local, "multimap.conf"), []byte(fmt.Sprintf(`SOFT_TEST {
  type = "header";
  header = "Subject";
  regexp = true;
  map = "%s/soft.map";
  action = "soft reject";
  message = "Try again later";
}
`, dir)), 0o644)
	r := &rspamd{addr: testenv.FreePort(t), dir: dir}
	conf := filepath.Join(dir, "rspamd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`.include "$CONFDIR/common.conf"
options {
  pidfile = "%[1]s/rspamd.pid";
  .include "$CONFDIR/options.inc"
  enable_test_patterns = true;
  dns { nameserver = ["%[2]s"]; timeout = 1s; retransmits = 1; }
}
logging { type = "file"; filename = "%[1]s/rspamd.log"; level = "info"; }
worker "rspamd_proxy" {
  bind_socket = "%[3]s";
  .include "$LOCAL_CONFDIR/local.d/worker-proxy.inc"
  count = 1;
}
`, dir, dns.Addr, r.addr)), 0o644)
	args := []string{"-f", "-c", conf, "--var", "LOCAL_CONFDIR=" + dir, "--var", "DBDIR=" + dir, "--var", "RUNDIR=" + dir, "--var", "LOGDIR=" + dir}
	if testenv.IsRoot() {
		args = append(args, "-u", "_rspamd", "-g", "_rspamd")
	}
	r.cmd = exec.Command(bin, args...)
	out, _ := os.Create(filepath.Join(dir, "stdout"))
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "rspamd.log"))
			t.Logf("rspamd.log (tail):\n%s", tail(string(b), 4000))
		}
	})
	// rspamd compiles its regular expressions at start: it can take a
	// while on a loaded machine.
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return r
		}
		if r.cmd.ProcessState != nil || time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "rspamd.log"))
			t.Fatalf("rspamd does not listen on %s:\n%s", r.addr, tail(string(b), 4000))
		}
	}
}

// stop ends rspamd: SIGTERM to the main process, which stops its
// workers; any worker left is killed by its PID.
func (r *rspamd) stop(t *testing.T) {
	if r.cmd.Process == nil || r.cmd.ProcessState != nil {
		return
	}
	kids := testenv.Children(r.cmd.Process.Pid)
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
	for _, pid := range kids {
		if testenv.Alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestRspamdMilter(t *testing.T) {
	rs := startRspamd(t)
	e := testenv.New(t)
	e.Extra["smtp"] = `relay_networks = []
local_domains = ["mx.test.example"]`
	e.Top = fmt.Sprintf("[[milter]]\nname = \"rspamd\"\nsocket = \"inet:%s\"\ntimeout = \"60s\"\n", rs.addr)
	e.WriteConfig()
	addr := e.SocketActivate()

	msg := func(subject, body string) string {
		return "From: <a@client.test>\r\nTo: <b@mx.test.example>\r\nSubject: " + subject +
			"\r\nDate: Sun, 6 Dec 2026 12:00:00 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@client.test>\r\n\r\n" + body + "\r\n"
	}
	// Clean: queued, with rspamd's headers.
	before := e.Queued()
	send(t, addr, "127.0.0.2", "a@client.test", msg("hello", "A clean message about lunch."), 250, 250)
	data := queued(t, e, before)
	if !strings.Contains(data, "X-Spamd-Result:") || !strings.Contains(data, "X-Rspamd-Server:") || !strings.HasPrefix(data, "Received: ") {
		t.Errorf("clean message without rspamd's headers:\n%s", data)
	}
	// GTUBE: refused with rspamd's reply, nothing queued.
	n := len(e.Queued())
	r := send(t, addr, "127.0.0.2", "a@client.test", msg("spam", gtube), 250, 554)
	// rspamd's own text: the matching symbol's message ("Gtube pattern").
	if !strings.Contains(r, "5.7.1") || !strings.Contains(r, "Gtube") {
		t.Errorf("GTUBE: %q", r)
	}
	// Soft reject: 4xx.
	if r := send(t, addr, "127.0.0.2", "a@client.test", msg("softly", "Not now."), 250, 451); !strings.Contains(r, "4.7.1") {
		t.Errorf("soft reject: %q", r)
	}
	if len(e.Queued()) != n {
		t.Errorf("a refused message was queued")
	}
	if log := e.Log(); !strings.Contains(log, "milter=rspamd") {
		t.Errorf("the milter's refusal is not logged:\n%s", log)
	}
	// rspamd stopped: default_action (tempfail) answers 451 at MAIL.
	rs.stop(t)
	if r := send(t, addr, "127.0.0.2", "a@client.test", "", 451, 0); !strings.Contains(r, "4.7.1") {
		t.Errorf("rspamd down: %q", r)
	}
}
