package interop

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// Debian's own Python, not whatever python3 is first on PATH: the modules
// come from Debian packages.
const python = "/usr/bin/python3"

// needPython checks that Debian's python3 can import module (from the
// Debian package pkg), and returns its version string.
func needPython(t *testing.T, module, pkg, version string) string {
	t.Helper()
	out, err := exec.Command(python, "-W", "ignore", "-c", "import "+module+"; print("+version+")").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s cannot import %s (CI=true: install %s): %v %s", python, module, pkg, err, out)
		}
		t.Skipf("%s cannot import %s: install %s", python, module, pkg)
	}
	return strings.TrimSpace(string(out))
}

func startPython(t *testing.T, args ...string) *daemon {
	t.Helper()
	s := &daemon{addr: testenv.FreePort(t)}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, "ADDR", s.addr)
	}
	s.start(t, exec.Command(python, append([]string{"-W", "ignore", "-u"}, args...)...), os.Kill, "")
	return s
}

// TestPythonSmtpd: Python's smtpd answers a second EHLO with "503
// Duplicate HELO/EHLO"; qrun reused connections and said EHLO again after
// RSET, and bounced every message sent on a reused connection.
func TestPythonSmtpd(t *testing.T) {
	version := "Python " + needPython(t, "smtpd", "python3 (3.11, bookworm)", "__import__('platform').python_version()")
	s := startPython(t, "-m", "smtpd", "-n", "-d", "-c", "DebuggingServer", "ADDR")
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\n%s", hop(s.addr), timeouts)
	e.WriteConfig()
	const n = 200
	o := pass(t, e, msgs(n, "pysmtpd", "r@remote.example"))
	got, conns := s.count("MESSAGE FOLLOWS"), s.count("Incoming connection from")
	report(t, "python smtpd", version, fmt.Sprintf("refuses a 2nd EHLO: %d msgs over %d connections", n, conns), o, n, 0, 0, 60*time.Second)
	if got != n {
		t.Errorf("smtpd printed %d messages, want %d", got, n)
	}
	if conns >= n/2 {
		t.Errorf("%d connections for %d messages: reuse did not work", conns, n)
	}
}

// TestAiosmtpd: aiosmtpd offers 8BITMIME but not SMTPUTF8: a UTF-8
// Subject is converted (RFC 2047), a UTF-8 From bounces (5.6.7).
func TestAiosmtpd(t *testing.T) {
	version := "aiosmtpd " + needPython(t, "aiosmtpd", "python3-aiosmtpd", "__import__('aiosmtpd').__version__")
	s := startPython(t, "-m", "aiosmtpd", "-n", "-l", "ADDR", "-c", "aiosmtpd.handlers.Debugging")
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\n%s", hop(s.addr), timeouts)
	e.WriteConfig()
	m := msgs(20, "aiosmtpd", "r@remote.example")
	m = append(m, msg{from: "sender@client.example", rcpts: []string{"utf8subject@remote.example"}, data: "From: sender@client.example\r\nSubject: Grüße\r\n\r\nZoë\r\n"},
		msg{from: "sender@client.example", rcpts: []string{"utf8from@remote.example"},
			data: "From: Zoë <sender@client.example>\r\nSubject: utf-8 from\r\n\r\nhi\r\n"})
	o := pass(t, e, m)
	report(t, "aiosmtpd", version, "no SMTPUTF8: UTF-8 Subject converted, From bounced", o, 21, 1, 0, 60*time.Second)
	if !strings.Contains(o.log, "5.6.7") {
		t.Errorf("no 5.6.7 in the log:\n%s", o.log)
	}
	if got := s.count("=?utf-8?q?Gr=C3=BC=C3=9Fe?="); got != 1 {
		t.Errorf("aiosmtpd got the UTF-8 Subject encoded %d times, want 1", got)
	}
}
