// Package chroot runs the real smtp-bs as root under
// systemd-socket-activate with a [chroot] config and checks, while a
// session is open, that the process is locked into the jail
// (/proc/PID/root) as user mail, and that mail, hosts.allow/hosts.deny,
// the log file, a milter on a unix socket outside the jail and the spool
// inside it all still work. Without root it checks what [chroot] required
// decides.
package chroot

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// jailEnv is an installation whose spool lies in a jail: dir/jail is
// root's, dir/jail/var/spool/smtp-bs is mail's, and everything else
// (config, log, hosts.allow, hosts.deny, the milter's socket) is outside.
func jailEnv(t *testing.T, required bool) (e *testenv.Env, jail string, sink *testenv.Sink) {
	t.Helper()
	e = testenv.New(t)
	jail = filepath.Join(e.Dir, "jail")
	e.SpoolDir = filepath.Join(jail, "var", "spool", "smtp-bs")
	allow, deny := filepath.Join(e.Dir, "hosts.allow"), filepath.Join(e.Dir, "hosts.deny")
	os.WriteFile(allow, []byte("smtp-bs: 127.0.0.1\n"), 0o644)
	os.WriteFile(deny, []byte("ALL: ALL\n"), 0o644)
	sink = testenv.NewSink(t)
	e.Extra["tcpwrap"] = fmt.Sprintf("enabled = true\nallow_file = %q\ndeny_file = %q", allow, deny)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
	e.Extra["chroot"] = fmt.Sprintf("dir = %q\nrequired = %v", jail, required)
	e.WriteConfig()
	if testenv.IsRoot() {
		// As an admin would: contrib/chroot/mkjail.sh, with qrun -init.
		cmd := exec.Command("sh", filepath.Join(testenv.Root(), "contrib", "chroot", "mkjail.sh"), "-local", "-config", e.CfgFile, jail)
		cmd.Env = append(os.Environ(), "QRUN="+testenv.Bin(t, "qrun"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mkjail.sh: %v\n%s", err, out)
		}
		for _, p := range []string{"etc/passwd", "etc/group"} {
			if _, err := os.Stat(filepath.Join(jail, p)); err != nil {
				t.Errorf("mkjail.sh -local: %v", err)
			}
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(e.SpoolDir), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := spool.Create(e.SpoolDir, spool.Ops{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("smtp-bs log:\n%s", e.Log())
		}
	})
	return e, jail, sink
}

// stampMilter is a go-milter server on a unix socket outside the jail: it
// stamps every message it sees, so the delivered copy shows that the
// milter, reached before the chroot, was still spoken to after it.
func stampMilter(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "stamp.sock")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o666)
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return stamp{} }, Actions: gomilter.OptAddHeader}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "unix:" + p
}

type stamp struct{ gomilter.NoOpMilter }

func (stamp) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	m.AddHeader("X-Stamp", "seen by a milter outside the jail")
	return gomilter.RespAccept, nil
}

var queuedRe = regexp.MustCompile(`queued as ([0-9a-z.]+)`)

func TestChrootAsRoot(t *testing.T) {
	testenv.NeedRoot(t, "the chroot needs it")
	e, jail, sink := jailEnv(t, true)
	e.Top = fmt.Sprintf("[[milter]]\nname = \"stamp\"\nsocket = %q\n", stampMilter(t))
	e.WriteConfig()
	addr, ssa := e.SocketActivateCmd()

	d := testenv.Dial(t, addr, 220)
	pid, err := testenv.WaitChild(ssa.Process.Pid, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
	if err != nil {
		t.Fatal(err)
	}
	if root != jail {
		t.Errorf("the session's root is %q, want the jail %q", root, jail)
	}
	mail, err := user.Lookup("mail")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := testenv.Status(pid, "Uid")
	gid, _ := testenv.Status(pid, "Gid")
	if strconv.FormatInt(uid, 10) != mail.Uid || strconv.FormatInt(gid, 10) != mail.Gid {
		t.Errorf("the session runs as uid %d gid %d, want mail (%s:%s)", uid, gid, mail.Uid, mail.Gid)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "Uid:" || f[0] == "Gid:") {
			for _, v := range f[1:] {
				if v == "0" {
					t.Errorf("root is kept somewhere: %s", l)
				}
			}
		}
	}

	d.Cmd("EHLO client.example", 250)
	d.Cmd("MAIL FROM:<sender@client.example>", 250)
	d.Cmd("RCPT TO:<rcpt@remote.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("From: sender@client.example\r\nTo: rcpt@remote.example\r\nSubject: from the jail\r\n\r\nJailed.\r\n.\r\n")
	text := d.Expect(250)
	d.Cmd("QUIT", 221)
	id := queuedRe.FindStringSubmatch(text)[1]

	// Spooled inside the jail, owned by mail.
	fi, err := os.Stat(filepath.Join(e.SpoolDir, "queue", id))
	if err != nil {
		t.Fatalf("not in the jail's spool: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fmt.Sprint(st.Uid) != mail.Uid {
		t.Errorf("queue/%s belongs to uid %d, want mail", id, st.Uid)
	}

	// hosts.deny, read before the chroot, still refuses another address.
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	greet, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(greet, "554 ") {
		t.Errorf("127.0.0.3 (denied) got greeting %q, want 554", greet)
	}
	// The refusal reads the client's commands: jailed and as mail too.
	if pid, err := testenv.WaitChild(ssa.Process.Pid, 5*time.Second); err != nil {
		t.Error(err)
	} else {
		root, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
		uid, _ := testenv.Status(pid, "Uid")
		if root != jail || strconv.FormatInt(uid, 10) != mail.Uid {
			t.Errorf("the refusing session runs in %q as uid %d", root, uid)
		}
	}
	c.Close()

	// qrun is not jailed: it reads the same spool by its outside path.
	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun -once: exit %d\n%s", code, out)
	}
	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("delivered %d, want 1", len(msgs))
	}
	data := string(msgs[0].Data)
	if !strings.Contains(data, "Jailed.") || !strings.Contains(data, "X-Stamp: seen by a milter outside the jail") {
		t.Errorf("delivered:\n%s", data)
	}
	// The log file, opened before the chroot, holds what came after it.
	log := e.Log()
	for _, want := range []string{"queued id=" + id, "stage=tcpwrap", "peer=127.0.0.3"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "chroot result=") {
		t.Errorf("the chroot was not clean:\n%s", log)
	}
	// The Received header carries a real time zone, loaded before the
	// chroot (time.Local is lazy): the jail has no /etc/localtime.
	if !regexp.MustCompile(`;\r\n\t\w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n`).MatchString(data) {
		t.Errorf("Received header date:\n%.400s", data)
	}
}

// TestChrootWithoutRoot: started as mail, smtp-bs cannot chroot; it says
// so in the log, and serves only when [chroot] required = false.
func TestChrootWithoutRoot(t *testing.T) {
	// As root, setpriv makes smtp-bs start as mail; --inetd gives it the
	// connection on stdin (a wrapper would break LISTEN_PID). As anyone
	// else, smtp-bs starts without root anyway.
	var wrap []string
	if testenv.IsRoot() {
		wrap = []string{"--inetd", testenv.Need(t, "setpriv"), "--reuid=mail", "--regid=mail", "--init-groups"}
	}
	for _, required := range []bool{true, false} {
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			e, _, _ := jailEnv(t, required)
			addr, _ := e.SocketActivateCmd(wrap...)
			if required {
				testenv.Dial(t, addr, 421)
				waitLog(t, e, "chroot result=unavailable")
				if log := e.Log(); !strings.Contains(log, "refusing to serve ([chroot] required = true)") {
					t.Errorf("log:\n%s", log)
				}
				return
			}
			d := testenv.Dial(t, addr, 220)
			d.Cmd("EHLO client.example", 250)
			d.Cmd("MAIL FROM:<sender@client.example>", 250)
			d.Cmd("QUIT", 221)
			if log := e.Log(); !strings.Contains(log, "serving without a chroot ([chroot] required = false)") {
				t.Errorf("log:\n%s", log)
			}
		})
	}
}

func waitLog(t *testing.T, e *testenv.Env, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(e.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", s, e.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSystemdJailDropIn: contrib/systemd/smtp-bs-jail.conf is a drop-in
// systemd-analyze verify accepts with smtp-bs@.service, and the sandbox
// still rates 1.5 or lower.
func TestSystemdJailDropIn(t *testing.T) {
	sa := testenv.Need(t, "systemd-analyze")
	dir := t.TempDir()
	bin := testenv.Bin(t, "smtp-bs")
	for _, f := range []string{"smtp-bs@.service", "smtp-bs.socket"} {
		b, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "systemd", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), []byte(strings.ReplaceAll(string(b), "/usr/local/sbin/smtp-bs", bin)), 0o644)
	}
	dropIn, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "systemd", "smtp-bs-jail.conf"))
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "smtp-bs@.service.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "smtp-bs@.service.d", "jail.conf"), []byte(strings.ReplaceAll(string(dropIn), "/usr/local/sbin/smtp-bs", bin)), 0o644)
	unit := filepath.Join(dir, "smtp-bs@.service")
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ = exec.Command(sa, "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("systemd-analyze security:\n%s", out)
	}
	if f, _ := strconv.ParseFloat(m[1], 64); f > 1.5 {
		t.Errorf("exposure with the jail drop-in: %s, above 1.5", m[1])
	} else {
		t.Logf("exposure with the jail drop-in: %s", m[1])
	}
}
