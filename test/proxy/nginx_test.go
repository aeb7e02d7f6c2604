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

// TestNginxContrib runs contrib/nginx/smtp-bs-stream.conf in Debian's
// nginx with only the addresses and the log path substituted: nginx sends
// PROXY v1, and the client behind it is the one smtp-bs judges and logs.
func TestNginxContrib(t *testing.T) {
	bin := testenv.Need(t, "nginx")
	const module = "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(module); err != nil {
		testenv.Missing(t, "nginx's stream module is not installed", "libnginx-mod-stream")
	}
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", "nginx", "smtp-bs-stream.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	env := proxiedEnv(t)
	smtpAddr := env.SocketActivate()
	fronts := map[string]string{}
	for _, port := range []string{"25", "587", "465"} {
		front := net.JoinHostPort(frontIP, strings.Split(testenv.FreePort(t), ":")[1])
		fronts[port] = front
		listen := regexp.MustCompile(`(?m)^(\t\tlisten )` + port + `;$`)
		node := regexp.MustCompile(`(?m)^(\t\tserver )192\.0\.2\.11:` + port + ` `)
		if !listen.MatchString(cfg) || !node.MatchString(cfg) {
			t.Fatalf("contrib/nginx/smtp-bs-stream.conf: no listen %s or server 192.0.2.11:%s", port, port)
		}
		cfg = listen.ReplaceAllString(cfg, "${1}"+front+";")
		cfg = node.ReplaceAllString(cfg, "${1}"+smtpAddr+" ")
	}
	cfg = regexp.MustCompile(`(?m)^\t\tserver 192\.0\.2\.12:.*\n`).ReplaceAllString(cfg, "")
	cfg = strings.Replace(cfg, "/var/log/nginx/smtp.log", filepath.Join(env.Dir, "nginx-smtp.log"), 1)
	// One process, in the foreground, so that stopping it by PID stops it all.
	cfg = fmt.Sprintf("load_module %s;\ndaemon off;\nmaster_process off;\npid %s;\nerror_log %s;\nevents {}\n",
		module, filepath.Join(env.Dir, "nginx.pid"), filepath.Join(env.Dir, "nginx-error.log")) + cfg
	path := filepath.Join(env.Dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", env.Dir, "-e", filepath.Join(env.Dir, "nginx-error.log"), "-c", path}
	if out, err := exec.Command(bin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t on contrib/nginx/smtp-bs-stream.conf: %v\n%s", err, out)
	}
	testenv.Start(t, bin, args...)
	for _, port := range []string{"25", "587", "465"} {
		testenv.WaitListen(t, fronts[port])
	}

	d, code, text := testenv.DialFrom(t, relayIP, fronts["25"])
	if code != 220 {
		t.Fatalf("%s through nginx: %q", relayIP, text)
	}
	d.Cmd("EHLO client.test", 250)
	d.Cmd("MAIL FROM:<sender@client.test>", 250)
	d.Cmd("RCPT TO:<someone@elsewhere.example>", 250)
	d.Cmd("QUIT", 221)
	d, code, text = testenv.DialFrom(t, deniedIP, fronts["587"])
	if code != 554 {
		t.Fatalf("%s through nginx: %q, want 554", deniedIP, text)
	}
	d.Cmd("QUIT", 221)
	waitLog(t, env, "reject ", "stage=tcpwrap", "peer="+deniedIP)
	if len(logLines(env, ": proxy ", "peer="+relayIP, "version=1", "server="+fronts["25"])) != 1 {
		t.Errorf("no v1 proxy line for %s to %s:\n%s", relayIP, fronts["25"], env.Log())
	}
}
