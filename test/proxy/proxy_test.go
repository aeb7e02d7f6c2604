package proxy

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// The addresses of the story: HAProxy listens on 127.0.0.9 and reaches
// smtp-bs from 127.0.0.1, the one trusted balancer. Clients come from:
//
//	127.0.0.5  hosts.allow admits it, and it is the relay network
//	127.0.0.6  admitted only through 127.0.0.9 (a daemon@host rule), no relay
//	127.0.0.7  refused by hosts.deny
//	127.0.0.8  admitted, untrusted: it connects straight to smtp-bs
//
// Had smtp-bs judged the balancer, every client would be refused
// (127.0.0.1 matches no allow rule) and none could relay.
const (
	balancer  = "127.0.0.1"
	frontIP   = "127.0.0.9"
	relayIP   = "127.0.0.5"
	atFrontIP = "127.0.0.6"
	deniedIP  = "127.0.0.7"
	outsideIP = "127.0.0.8"
)

// proxiedEnv is an installation behind a balancer at 127.0.0.1, with the
// hosts.allow and relay network above.
func proxiedEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.New(t)
	allow := filepath.Join(env.Dir, "hosts.allow")
	deny := filepath.Join(env.Dir, "hosts.deny")
	os.WriteFile(allow, []byte(fmt.Sprintf("smtp-bs: %s %s\nsmtp-bs@%s: %s\n", relayIP, outsideIP, frontIP, atFrontIP)), 0o644)
	os.WriteFile(deny, []byte("ALL: ALL\n"), 0o644)
	env.Extra["tcpwrap"] = fmt.Sprintf("enabled = true\ndaemon = \"smtp-bs\"\nallow_file = %q\ndeny_file = %q", allow, deny)
	env.Extra["smtp"] = fmt.Sprintf("relay_networks = [%q]", relayIP)
	env.Extra["proxy"] = fmt.Sprintf("trusted = [%q]\nheader_timeout = \"3s\"", balancer)
	env.WriteConfig()
	return env
}

func TestBehindHAProxy(t *testing.T) {
	launchers := map[string]func(*testing.T, *testenv.Env) string{
		"systemd-socket-activate": func(t *testing.T, env *testenv.Env) string { return env.SocketActivate() },
		"xinetd":                  startXinetd,
	}
	for _, name := range []string{"systemd-socket-activate", "xinetd"} {
		for _, v := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/v%d", name, v), func(t *testing.T) {
				env := proxiedEnv(t)
				smtpAddr := launchers[name](t, env)
				front := net.JoinHostPort(frontIP, strings.Split(testenv.FreePort(t), ":")[1])
				h := startHAProxy(t, env.Dir, front, v, backend{"node", smtpAddr})
				if v == 2 {
					h.waitChecked(t, "node")
				}
				behindHAProxy(t, env, smtpAddr, front, v)
				if v == 2 {
					// HAProxy's v2 checks (LOCAL) went on all along: each got
					// its 220 and 221, and none left a line in the log.
					s := h.waitChecked(t, "node")
					if s["chkfail"] != "0" || s["status"] != "UP" {
						t.Errorf("haproxy's checks: status %s, %s failed (%s)", s["status"], s["chkfail"], s["last_chk"])
					}
					if l := logLines(env, "peer="+balancer); len(l) > 0 {
						t.Errorf("health checks or the balancer show in the log:\n%s", strings.Join(l, "\n"))
					}
				}
			})
		}
	}
}

func behindHAProxy(t *testing.T, env *testenv.Env, smtpAddr, front string, v int) {
	// The relay network's client relays; Received and the log name it.
	d, code, text := testenv.DialFrom(t, relayIP, front)
	if code != 220 {
		t.Fatalf("%s through haproxy: greeting %q, want 220", relayIP, text)
	}
	d.Cmd("EHLO client.test", 250)
	d.Cmd("MAIL FROM:<sender@client.test>", 250)
	d.Cmd("RCPT TO:<someone@elsewhere.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("Subject: behind haproxy\r\n\r\nbody\r\n.\r\n")
	reply := d.Expect(250)
	d.Cmd("QUIT", 221)
	f := strings.Fields(reply)
	_, msg := env.Message(f[len(f)-1])
	if !strings.Contains(msg, "Received: from client.test (["+relayIP+"])") {
		t.Errorf("the Received field does not name %s:\n%s", relayIP, msg)
	}
	if len(logLines(env, ": proxy ", "peer="+relayIP, "balancer="+balancer, fmt.Sprintf("version=%d", v), "server="+front)) != 1 {
		t.Errorf("no proxy line for %s behind %s to %s in the log:\n%s", relayIP, balancer, front, env.Log())
	}
	if len(logLines(env, ": connect ", "peer="+relayIP, "relay=true")) != 1 {
		t.Errorf("no connect line for %s with relay=true:\n%s", relayIP, env.Log())
	}

	// Admitted by smtp-bs@127.0.0.9 (the address the client dialled, from
	// the header), outside the relay network.
	d, code, text = testenv.DialFrom(t, atFrontIP, front)
	if code != 220 {
		t.Fatalf("%s through haproxy (smtp-bs@%s rule): greeting %q, want 220", atFrontIP, frontIP, text)
	}
	d.Cmd("EHLO client.test", 250)
	d.Cmd("MAIL FROM:<sender@client.test>", 250)
	d.Cmd("RCPT TO:<someone@elsewhere.example>", 554)
	d.Cmd("QUIT", 221)

	// Refused by hosts.deny, by its own address.
	d, code, text = testenv.DialFrom(t, deniedIP, front)
	if code != 554 || !strings.Contains(text, "5.7.1") {
		t.Fatalf("%s through haproxy: greeting %q, want 554 5.7.1", deniedIP, text)
	}
	d.Cmd("QUIT", 221)
	if len(logLines(env, "reject ", "stage=tcpwrap", "peer="+deniedIP)) != 1 {
		t.Errorf("no tcpwrap reject for %s:\n%s", deniedIP, env.Log())
	}

	// The trusted balancer's address without a header: dropped, with no
	// greeting, and logged.
	c, err := net.DialTimeout("tcp", smtpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("EHLO straight.test\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) != 0 {
		t.Errorf("a trusted peer without a header was answered %q, want a drop", got)
	}
	waitLog(t, env, "reject ", "stage=proxy", "balancer="+balancer)

	// An untrusted client's header is not believed: before the greeting
	// it is an early talker; after it, a bad command, and the client stays
	// itself (no relay, as 127.0.0.5 would have).
	hdr := fmt.Sprintf("PROXY TCP4 %s %s 40000 25\r\n", relayIP, frontIP)
	c, err = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(outsideIP)}}).Dial("tcp", smtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(hdr))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ = io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(got), "554 ") {
		t.Errorf("a header from untrusted %s before the greeting got %q, want 554", outsideIP, got)
	}
	d, code, text = testenv.DialFrom(t, outsideIP, smtpAddr)
	if code != 220 {
		t.Fatalf("%s straight to smtp-bs: greeting %q", outsideIP, text)
	}
	d.Send(hdr)
	if code, text := d.Reply(); code < 500 {
		t.Errorf("a header as a command got %q, want a 5xx", text)
	}
	d.Cmd("EHLO client.test", 250)
	d.Cmd("MAIL FROM:<sender@client.test>", 250)
	d.Cmd("RCPT TO:<someone@elsewhere.example>", 554)
	d.Cmd("QUIT", 221)
	if len(logLines(env, ": connect ", "peer="+relayIP)) != 1 { // the first client's
		t.Errorf("an untrusted header was believed:\n%s", env.Log())
	}
	if len(logLines(env, ": connect ", "peer="+outsideIP, "relay=false")) != 2 {
		t.Errorf("want two connect lines for %s, relay=false:\n%s", outsideIP, env.Log())
	}
}

// waitLog waits for a log line with every one of parts (a dropped
// session's line is written as its process ends, after the client saw the
// close).
func waitLog(t *testing.T, env *testenv.Env, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(logLines(env, parts...)) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", parts, env.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTCPWrapTestBehindBalancer: smtp-bs -tcpwrap-test answers for the
// client's address as a session behind the balancer would be judged, and
// given the balancer's own address says that one is never judged.
func TestTCPWrapTestBehindBalancer(t *testing.T) {
	env := proxiedEnv(t)
	run := func(addr string) (string, int) {
		cmd := exec.Command(testenv.Bin(t, "smtp-bs"), "-config", env.CfgFile, "-tcpwrap-test", addr)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run(relayIP); code != 0 || !strings.Contains(out, "verdict: allowed") || strings.Contains(out, "balancer") {
		t.Errorf("-tcpwrap-test %s: exit %d\n%s", relayIP, code, out)
	}
	if out, code := run(deniedIP); code != 77 || !strings.Contains(out, "verdict: denied") {
		t.Errorf("-tcpwrap-test %s: exit %d\n%s", deniedIP, code, out)
	}
	if out, _ := run(balancer); !strings.Contains(out, "trusted balancer") || !strings.Contains(out, "never by this one") {
		t.Errorf("-tcpwrap-test %s (the balancer) does not say it is never judged:\n%s", balancer, out)
	}
}
