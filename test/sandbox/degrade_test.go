package sandbox_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// tcpserverEnv starts the failpoint smtp-bs under tcpserver with extra
// environment (tcpserver passes its own on).
func tcpserverEnv(t *testing.T, e *testenv.Env, env ...string) string {
	t.Helper()
	tcpserver := testenv.Need(t, "tcpserver")
	addr := testenv.FreePort(t)
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-R", "-H"}
	if testenv.IsRoot() {
		uid, gid := mailIDs(t)
		args = append(args, "-u", uid, "-g", gid)
	}
	args = append(args, host, port, testenv.FailpointBin(t, "smtp-bs"), "-config", e.CfgFile)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	testenv.Start(t, tcpserver, args...)
	testenv.WaitListen(t, addr)
	return addr
}

// TestOlderKernel plays a kernel with Landlock ABI 3 (no TCP rules) and
// no seccomp: smtp-bs serves with the file rules it has, says once what
// is not enforced, and -check reports the same level; with [sandbox]
// required it refuses to serve instead.
func TestOlderKernel(t *testing.T) {
	needSandbox(t)
	const pretend = "SMTPBS_SANDBOX_PRETEND=abi=3,noseccomp"
	const level = "landlock ABI 3: file system only; seccomp: off"
	e := testenv.New(t)
	w := newWorld(t, e)
	addr := tcpserverEnv(t, e, pretend, "SMTPBS_SANDBOX_PROBE_DIR="+w.dir)

	passwd, connect := "read:/etc/passwd", fmt.Sprintf("connect:%d", w.port())
	out := w.arm(t, passwd, connect)
	for i := 0; i < 2; i++ {
		d := testenv.Dial(t, addr, 220)
		d.Cmd("EHLO c.test", 250)
		d.Cmd("QUIT", 221)
	}
	r := results(t, out)
	if r[passwd] != "EACCES" {
		t.Errorf("%s: %q: the file rules of ABI 3 should still hold", passwd, r[passwd])
	}
	if r[connect] != "ok" {
		t.Errorf("%s: %q: ABI 3 has no TCP rules, the connect should pass", connect, r[connect])
	}
	waitLog(t, e, 2, "disconnect")
	log := e.Log()
	if n := strings.Count(log, "sandbox level="); n != 1 {
		t.Errorf("the missing parts were logged %d times over two sessions, want once:\n%s", n, log)
	}
	for _, want := range []string{level, "no TCP rules", "seccomp: not offered"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	check := exec.Command(testenv.FailpointBin(t, "smtp-bs"), "-config", e.CfgFile, "-check")
	check.Env = append(os.Environ(), pretend)
	b, _ := check.CombinedOutput()
	if !strings.Contains(string(b), "sandbox: "+level) {
		t.Errorf("-check does not report %q:\n%s", level, b)
	}

	// Required: refused, with a 421 greeting, and nothing is served.
	e.Extra["sandbox"] = "required = true"
	e.WriteConfig()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "421 ") {
		t.Errorf("with [sandbox] required, the greeting is %q, want 421", buf[:n])
	}
	waitLog(t, e, 1, "result=refused")
	check = exec.Command(testenv.FailpointBin(t, "smtp-bs"), "-config", e.CfgFile, "-check")
	check.Env = append(os.Environ(), pretend)
	b, _ = check.CombinedOutput()
	if !strings.Contains(string(b), "FAIL  sandbox: "+level+", but [sandbox] required = true") || check.ProcessState.ExitCode() != 78 {
		t.Errorf("-check with required on an older kernel: exit %d\n%s", check.ProcessState.ExitCode(), b)
	}
}

// waitLog waits until the log holds n lines containing s.
func waitLog(t *testing.T, e *testenv.Env, n int, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(e.Log(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log never had %d lines with %q:\n%s", n, s, e.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
