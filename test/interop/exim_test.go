package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// eximRoot is where Debian's exim4-daemon-light, exim4-base and libidn12
// are unpacked (dpkg -x; exim conflicts with Postfix as an MTA):
// $EXIM_ROOT, or where bench/fetch.sh (run by scripts/deps.sh) unpacks them.
func eximRoot(t *testing.T) string {
	return unpacked(t, "EXIM_ROOT", "usr/sbin/exim4", "exim4-daemon-light exim4-base libidn12")
}

const eximConf = `primary_hostname = exim.interop.example
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
spool_directory = {{dir}}/spool
log_file_path = {{dir}}/%slog
keep_environment = LD_LIBRARY_PATH
queue_only = true
host_lookup =
rfc1413_hosts =
hostlist relay_from_hosts = 127.0.0.1
acl_smtp_rcpt = acl_check_rcpt
tls_certificate = {{dir}}/cert.pem
tls_privatekey = {{dir}}/key.pem
{{extra}}
begin acl
acl_check_rcpt:
  accept hosts = +relay_from_hosts
  deny message = relay not permitted
begin routers
begin transports
begin retry
* * F,1h,15m
`

// exim is Exim 4 run per connection by tcpserver as "exim4 -bs", in a
// mount namespace whose /etc/passwd has Debian's exim user (the binary
// looks it up by name), with a queue-only config: what it takes stays in
// its spool, where the test reads it.
type exim struct {
	addr, dir, version string
}

func startExim(t *testing.T, extra string) *exim {
	t.Helper()
	root := eximRoot(t)
	tcpserver := testenv.Need(t, "tcpserver")
	unshare := testenv.Need(t, "unshare")
	testenv.NeedRoot(t, "exim's private /etc/passwd is a mount namespace")
	dir := daemonDir(t)
	x := &exim{addr: testenv.FreePort(t), dir: dir}
	ca := testenv.NewCA(t, dir)
	_, certPEM, keyPEM := ca.Leaf(t, "127.0.0.1", "exim.interop.example")
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o644)
	withUsers(dir, "Debian-exim:x:64990:64990:exim (test):/nonexistent:/usr/sbin/nologin\n", "Debian-exim:x:64990:\n")
	conf := filepath.Join(dir, "exim.conf")
	os.WriteFile(conf, []byte(strings.NewReplacer("{{dir}}", dir, "{{extra}}", extra).Replace(eximConf)), 0o644)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o750)
	// The spool and the logs (in dir) are the exim user's; the config stays
	// root's, or exim refuses it.
	for _, c := range [][]string{{"chown", "-R", "64990:64990", filepath.Join(dir, "spool")}, {"chown", "64990:64990", dir}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	bin := filepath.Join(root, "usr", "sbin", "exim4")
	env := "LD_LIBRARY_PATH=" + filepath.Join(root, "usr", "lib", "x86_64-linux-gnu")
	v, err := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c",
		fmt.Sprintf("mount --bind %[1]s/passwd /etc/passwd && mount --bind %[1]s/group /etc/group && %[2]s %[3]s -C %[4]s -bV", dir, env, bin, conf)).CombinedOutput()
	if err != nil {
		// Unpacked, Exim takes its libraries from the system: say which
		// package to install rather than fail later with a closed socket.
		testenv.Missing(t, fmt.Sprintf("exim4 -bV fails (%v): %s", err, strings.TrimSpace(string(v))), "libgnutls-dane0 and Exim's other libraries")
	}
	if f := strings.Fields(string(v)); len(f) > 2 {
		x.version = "Exim " + f[2]
	}
	script := fmt.Sprintf("mount --bind %[1]s/passwd /etc/passwd && mount --bind %[1]s/group /etc/group && %[2]s exec %[3]s -q -c 20 %[4]s %[5]s %[6]s -C %[7]s -bs",
		dir, env, tcpserver, "127.0.0.1", strings.Split(x.addr, ":")[1], bin, conf)
	// Killing tcpserver is enough: each exim ends with its connection.
	(&daemon{addr: x.addr}).start(t, exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script), os.Kill, filepath.Join(dir, "mainlog"))
	return x
}

// data reads the bodies Exim queued (its -D files).
func (x *exim) data() []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(x.dir, "spool", "input", "*-D"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, string(b))
	}
	return out
}

// TestExim: Exim 4.96 with 8BITMIME and SMTPUTF8 takes 8-bit mail as it
// is; without them (accept_8bitmime = false), an 8-bit body is converted
// to quoted-printable and a UTF-8 From bounces 5.6.7: nothing 8-bit goes
// to a server that did not offer 8BITMIME.
func TestExim(t *testing.T) {
	for _, c := range []struct {
		name, extra      string
		sent, bounced    int
		eightBitReceived bool
	}{
		{"8BITMIME and SMTPUTF8 offered", "", 7, 0, true},
		{"no 8BITMIME, no SMTPUTF8", "accept_8bitmime = false\nsmtputf8_advertise_hosts = :", 6, 1, false},
	} {
		x := startExim(t, c.extra)
		e := testenv.New(t)
		e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\n%s", hop(x.addr), timeouts)
		e.WriteConfig()
		m := msgs(5, "exim", "r@remote.example")
		m = append(m, msg{from: "sender@client.example", rcpts: []string{"body8@remote.example"}, data: message("eight bit body", "Zoë and Grüße\r\n")},
			msg{from: "sender@client.example", rcpts: []string{"from8@remote.example"}, data: "From: Zoë <sender@client.example>\r\nSubject: utf-8 from\r\n\r\nhi\r\n"})
		o := pass(t, e, m)
		report(t, "exim", x.version, c.name, o, c.sent, c.bounced, 0, 60*time.Second)
		eight := false
		for _, d := range x.data() {
			if strings.IndexFunc(d, func(r rune) bool { return r >= 0x80 }) >= 0 {
				eight = true
			}
		}
		// What was sent, and the bounce, which goes back through Exim.
		if got := len(x.data()); got != c.sent+c.bounced {
			t.Errorf("%s: Exim queued %d messages, want %d", c.name, got, c.sent+c.bounced)
		}
		if eight != c.eightBitReceived {
			t.Errorf("%s: Exim got 8-bit content: %v, want %v", c.name, eight, c.eightBitReceived)
		}
	}
}
