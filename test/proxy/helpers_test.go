// Package proxy runs smtp-bs behind Debian's HAProxy, started by the test
// on 127.0.0.1 with its own config in a temporary directory (never the
// packaged daemon), under the real launchers: a client bound to a
// 127.0.0.x source address must be judged and recorded by that address,
// not the balancer's.
package proxy

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// haproxy is one HAProxy process of a test.
type haproxy struct {
	cmd   *exec.Cmd
	stats string // its stats socket
	front string // the frontend's address
}

// backend is one smtp-bs node behind the balancer.
type backend struct {
	name, addr string
}

// startHAProxy writes a config for a TCP frontend on front balancing the
// backends with PROXY protocol version v, checks it with haproxy -c, and
// runs haproxy in the foreground (stopped by PID at the end). For v2 the
// backends are health-checked as contrib/haproxy/haproxy.cfg does: a
// LOCAL header, expect 220, QUIT.
func startHAProxy(t *testing.T, dir, front string, v int, backends ...backend) *haproxy {
	t.Helper()
	bin := testenv.Need(t, "haproxy")
	h := &haproxy{stats: filepath.Join(dir, "haproxy.sock"), front: front}
	send := "send-proxy"
	check := ""
	if v == 2 {
		send = "send-proxy-v2"
		check = " check inter 200ms fall 1 rise 1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
	stats socket %s mode 600 level admin
	log stderr format raw local0 info
defaults
	mode tcp
	log global
	option redispatch
	retries 3
	timeout connect 2s
	timeout check 5s
	timeout client 6m
	timeout server 6m
frontend smtp
	bind %s
	default_backend nodes
backend nodes
	balance roundrobin
	option tcp-check
	tcp-check expect string 220
	tcp-check send QUIT\r\n
	tcp-check expect string 221
`, h.stats, front)
	for _, be := range backends {
		fmt.Fprintf(&b, "\tserver %s %s %s%s\n", be.name, be.addr, send, check)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	h.cmd = testenv.Start(t, bin, "-db", "-f", cfg)
	testenv.WaitListen(t, front)
	return h
}

// stat returns HAProxy's statistics row of server name ("show stat").
func (h *haproxy) stat(t *testing.T, name string) map[string]string {
	t.Helper()
	return h.statIn(t, "nodes", name)
}

// statIn returns the statistics row of server name in backend be.
func (h *haproxy) statIn(t *testing.T, be, name string) map[string]string {
	t.Helper()
	c, err := net.DialTimeout("unix", h.stats, 5*time.Second)
	if err != nil {
		t.Fatalf("haproxy stats socket: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "show stat\n")
	r := csv.NewReader(bufio.NewReader(c))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("show stat: %v", err)
	}
	head := rows[0]
	head[0] = strings.TrimPrefix(head[0], "# ")
	for _, row := range rows[1:] {
		if len(row) > 1 && row[0] == be && row[1] == name {
			m := map[string]string{}
			for i := range min(len(head), len(row)) {
				m[head[i]] = row[i]
			}
			return m
		}
	}
	t.Fatalf("show stat: no server %s/%s", be, name)
	return nil
}

// waitChecked waits until HAProxy's health check of server name has
// passed (check_status L7OK: the tcp-check saw 220 and 221) and returns
// its statistics row.
func (h *haproxy) waitChecked(t *testing.T, name string) map[string]string {
	t.Helper()
	return h.waitCheckedIn(t, "nodes", name)
}

// waitCheckedIn is waitChecked for server name of backend be.
func (h *haproxy) waitCheckedIn(t *testing.T, be, name string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := h.statIn(t, be, name)
		if s["check_status"] == "L7OK" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's check of %s: %q (%s), want L7OK", name, s["check_status"], s["last_chk"])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startXinetd runs smtp-bs under the real xinetd on a free 127.0.0.1 port.
// xinetd's own libwrap check is off (NOLIBWRAP), as in contrib/xinetd:
// it would judge the balancer.
func startXinetd(t *testing.T, env *testenv.Env) string {
	t.Helper()
	xinetd := testenv.Need(t, "xinetd")
	addr := testenv.FreePort(t)
	_, port, _ := strings.Cut(addr, ":")
	user := ""
	if testenv.IsRoot() {
		user = "\tuser = root\n" // smtp-bs drops to run_as itself
	}
	conf := fmt.Sprintf(`service smtp-bs-proxy-test
{
	type = UNLISTED
	socket_type = stream
	protocol = tcp
	wait = no
%s	bind = 127.0.0.1
	port = %s
	server = %s
	server_args = -config %s
	flags = NOLIBWRAP
	instances = UNLIMITED
	per_source = UNLIMITED
	cps = 1000 1
}
`, user, port, testenv.Bin(t, "smtp-bs"), env.CfgFile)
	path := filepath.Join(env.Dir, "xinetd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Start(t, xinetd, "-dontfork", "-filelog", filepath.Join(env.Dir, "xinetd.log"), "-f", path)
	testenv.WaitListen(t, addr)
	return addr
}

// logLines returns the lines of the env's log that contain every one of
// parts.
func logLines(env *testenv.Env, parts ...string) []string {
	var out []string
	for _, l := range strings.Split(env.Log(), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}
