package proxy

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// TestHAProxyContrib runs contrib/haproxy/haproxy.cfg itself, with only
// the addresses substituted (the frontends on 127.0.0.9, node1 of each
// backend a smtp-bs under systemd-socket-activate, node2 left out) and
// the check interval shortened from 10 s so the test need not wait: its
// three frontends pass a client's address on, and its health checks pass
// on every port without a line in smtp-bs's log.
func TestHAProxyContrib(t *testing.T) {
	bin := testenv.Need(t, "haproxy")
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "haproxy", "haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	env := proxiedEnv(t)
	fronts := map[string]string{}
	for _, port := range []string{"25", "587", "465"} {
		smtpAddr := env.SocketActivate()
		front := net.JoinHostPort(frontIP, strings.Split(testenv.FreePort(t), ":")[1])
		fronts[port] = front
		bind := regexp.MustCompile(`(?m)^\tbind :` + port + `$`)
		node := regexp.MustCompile(`(?m)^(\tserver node1 )192\.0\.2\.11:` + port + `$`)
		if !bind.MatchString(cfg) || !node.MatchString(cfg) {
			t.Fatalf("contrib/haproxy/haproxy.cfg: no bind :%s or server node1 192.0.2.11:%s", port, port)
		}
		cfg = bind.ReplaceAllString(cfg, "\tbind "+front)
		cfg = node.ReplaceAllString(cfg, "${1}"+smtpAddr)
	}
	cfg = regexp.MustCompile(`(?m)^\tserver node2 .*\n`).ReplaceAllString(cfg, "")
	if !strings.Contains(cfg, "check inter 10s") {
		t.Fatal("contrib/haproxy/haproxy.cfg: no check inter 10s")
	}
	cfg = strings.ReplaceAll(cfg, "check inter 10s", "check inter 200ms")
	stats := filepath.Join(env.Dir, "haproxy.sock")
	cfg = fmt.Sprintf("global\n\tstats socket %s mode 600 level admin\n\tlog stderr format raw local0 info\n", stats) + cfg
	path := filepath.Join(env.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil || strings.Contains(string(out), "WARNING") {
		t.Fatalf("haproxy -c on contrib/haproxy/haproxy.cfg: %v\n%s", err, out)
	}
	testenv.Start(t, bin, "-db", "-f", path)
	h := &haproxy{stats: stats}
	for _, port := range []string{"25", "587", "465"} {
		testenv.WaitListen(t, fronts[port])
	}
	for _, be := range []string{"smtp_nodes", "submission_nodes", "smtps_nodes"} {
		h.waitCheckedIn(t, be, "node1")
	}

	d, code, text := testenv.DialFrom(t, relayIP, fronts["25"])
	if code != 220 {
		t.Fatalf("through contrib's port 25: %q", text)
	}
	d.Cmd("EHLO client.test", 250)
	d.Cmd("QUIT", 221)
	waitLog(t, env, ": connect ", "peer="+relayIP)
	if l := logLines(env, "version=2", "server="+fronts["25"]); len(l) != 1 {
		t.Errorf("want one proxy line (v2, to %s):\n%s", fronts["25"], env.Log())
	}
	for _, be := range []string{"smtp_nodes", "submission_nodes", "smtps_nodes"} {
		if s := h.waitCheckedIn(t, be, "node1"); s["chkfail"] != "0" {
			t.Errorf("%s: %s failed checks (%s)", be, s["chkfail"], s["last_chk"])
		}
	}
	if l := logLines(env, "peer="+balancer); len(l) > 0 {
		t.Errorf("health checks show in the log:\n%s", strings.Join(l, "\n"))
	}
}
