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

func postfixVersion(t *testing.T) string {
	root := testenv.PostfixRoot(t)
	cmd := exec.Command(filepath.Join(root, "usr", "sbin", "postconf"), "-d", "-h", "mail_version")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr", "lib", "postfix"))
	out, err := cmd.Output()
	if err != nil {
		return "postfix ?"
	}
	return "Postfix " + strings.TrimSpace(string(out))
}

// postfix is a real Postfix (master, smtpd, cleanup, qmgr) from the
// unpacked Debian package, with its own config and queue directories,
// listening on 127.0.0.1. Every message it takes is put on hold, so the
// hold queue counts what arrived.
type postfix struct {
	addr string
	// authAddr is a second smtpd that relays only for an authenticated
	// client (AUTH through Dovecot's SASL), when started with one.
	authAddr string
	dir      string
	queue    string
	ca       *testenv.CA
}

const postfixMain = `compatibility_level = 3.6
queue_directory = {{dir}}/queue
data_directory = {{dir}}/data
command_directory = {{root}}/usr/sbin
daemon_directory = {{root}}/usr/lib/postfix/sbin
shlib_directory = {{root}}/usr/lib/postfix
meta_directory = {{root}}/etc/postfix
mail_owner = nobody
setgid_group = mail
myhostname = postfix.interop.example
mydomain = interop.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_non_fqdn_helo_hostname
smtpd_recipient_restrictions = check_recipient_access inline:{ {refused@remote.example = 550 5.1.1 no such user}, {later@remote.example = 450 4.2.0 try later} }, permit_mynetworks, reject
smtpd_tls_cert_file = {{dir}}/cert.pem
smtpd_tls_key_file = {{dir}}/key.pem
smtpd_tls_security_level = may
header_checks = regexp:{ {/^Subject:/ HOLD} }
maillog_file = {{dir}}/maillog
maillog_file_prefixes = {{dir}}
default_privs = daemon
import_environment = MAIL_CONFIG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH
smtputf8_enable = yes
biff = no
smtpd_client_connection_rate_limit = 0
smtpd_peername_lookup = no
`

const postfixMaster = `{{addr}} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
showq unix n - n - - showq
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
tlsmgr unix - - n 1000? 1 tlsmgr
postlog unix-dgram n - n - 1 postlogd
`

const postfixAuthService = `{{authaddr}} inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=dovecot -o smtpd_sasl_path={{sasl}} -o smtpd_tls_auth_only=yes -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
`

// startPostfix starts Postfix; with sasl (Dovecot's auth socket), a second
// smtpd at authAddr takes mail only after AUTH.
func startPostfix(t *testing.T, sasl string) *postfix {
	t.Helper()
	root := testenv.PostfixRoot(t)
	testenv.NeedRoot(t, "Postfix's master runs as root")
	dir := daemonDir(t)
	p := &postfix{addr: testenv.FreePort(t), dir: dir, queue: filepath.Join(dir, "queue")}
	p.ca = testenv.NewCA(t, dir)
	_, certPEM, keyPEM := p.ca.Leaf(t, "127.0.0.1", "postfix.interop.example")
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	master := postfixMaster
	if sasl != "" {
		p.authAddr = testenv.FreePort(t)
		master += postfixAuthService
	}
	r := strings.NewReplacer("{{dir}}", dir, "{{root}}", root, "{{addr}}", p.addr, "{{authaddr}}", p.authAddr, "{{sasl}}", sasl)
	etc := filepath.Join(dir, "etc")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "main.cf"), []byte(r.Replace(postfixMain)), 0o644)
	os.WriteFile(filepath.Join(etc, "master.cf"), []byte(r.Replace(master)), 0o644)
	for _, d := range []string{"pid", "private", "public", "incoming", "active", "deferred", "defer", "bounce", "hold", "corrupt", "maildrop", "flush", "saved", "trace"} {
		os.MkdirAll(filepath.Join(p.queue, d), 0o700)
	}
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	os.WriteFile(filepath.Join(dir, "maillog"), nil, 0o644)
	for _, c := range [][]string{{"chown", "-R", "nobody", p.queue, filepath.Join(dir, "data"), filepath.Join(dir, "maillog")},
		{"chown", "root", p.queue, filepath.Join(p.queue, "pid")}, {"chgrp", "mail", filepath.Join(p.queue, "public"), filepath.Join(p.queue, "maildrop")}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	os.Chmod(p.queue, 0o755)
	os.Chmod(filepath.Join(p.queue, "pid"), 0o755)
	os.Chmod(filepath.Join(p.queue, "public"), 0o710)
	os.Chmod(filepath.Join(p.queue, "maildrop"), 0o730)
	cmd := exec.Command(filepath.Join(root, "usr", "lib", "postfix", "sbin", "master"), "-d", "-c", etc)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr", "lib", "postfix"), "MAIL_CONFIG="+etc)
	// master ends its children on SIGINT.
	(&daemon{addr: p.addr}).start(t, cmd, os.Interrupt, filepath.Join(dir, "maillog"))
	return p
}

// held counts the messages in the hold queue, waiting up to a few seconds
// for cleanup to finish with the last one.
func (p *postfix) held(want int) int {
	var n int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ents, _ := os.ReadDir(filepath.Join(p.queue, "hold"))
		if n = len(ents); n >= want {
			break
		}
	}
	return n
}

// TestPostfixSmtpd: Postfix's smtpd with STARTTLS (a test CA, verified),
// reject_non_fqdn_helo_hostname (EHLO localhost before STARTTLS was
// refused with 504), a recipient refused with 550 and one with 450.
func TestPostfixSmtpd(t *testing.T) {
	p := startPostfix(t, "")
	version := postfixVersion(t)
	for _, mode := range []string{"required", "opportunistic"} {
		e := testenv.New(t)
		e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = %q\ntls_verify = true\ntls_ca_file = %q\n%s",
			hop(p.addr), mode, p.ca.PEMFile, timeouts)
		e.WriteConfig()
		before := p.held(0)
		m := msgs(10, "postfix "+mode, "r@remote.example")
		m = append(m, msg{from: "sender@client.example", rcpts: []string{"refused@remote.example", "later@remote.example", "ok@remote.example"},
			data: message("postfix mixed "+mode, "Body.\r\n")})
		o := pass(t, e, m)
		report(t, "postfix smtpd", version, "STARTTLS "+mode+", 550 and 450 recipients", o, 11, 1, 1, 60*time.Second)
		// 11 messages, and the bounce for refused@ (to sender@client.example,
		// through the same smarthost).
		if n := p.held(before+12) - before; n != 12 {
			t.Errorf("%s: Postfix holds %d new messages, want 12 (11 and one bounce)", mode, n)
		}
		if strings.Contains(o.log, "in clear") || strings.Contains(o.log, "tls-downgrade") {
			t.Errorf("%s: delivered in clear:\n%s", mode, o.log)
		}
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	if strings.Contains(string(b), "localhost") && strings.Contains(string(b), "Helo command rejected") {
		t.Errorf("Postfix refused a HELO name:\n%s", b)
	}
}

// TestPostfixAuthAndAnInternalRoute: one qrun, two next hops with their own
// policies ([delivery.hosts]): a smarthost that relays only after AUTH
// (Postfix, SASL through Dovecot) over verified TLS, and an internal route
// (smtp-sink) with no STARTTLS and no AUTH. With one auth_file and one
// smarthost_tls for every route, the second could not be reached.
func TestPostfixAuthAndAnInternalRoute(t *testing.T) {
	d := startDovecot(t)
	p := startPostfix(t, d.auth)
	sink := testenv.StartSmtpSink(t)
	e := testenv.New(t)
	auth := filepath.Join(e.Dir, "relay.auth")
	os.WriteFile(auth, []byte("alice:s3cret\n"), 0o600)
	testenv.Chown(t, auth, "mail")
	e.Extra["delivery"] = fmt.Sprintf(`smarthost = %q
smarthost_tls = "required"
tls_verify = true
tls_ca_file = %q
auth_file = %q
%s
[delivery.routes]
"internal.example" = %q
[delivery.hosts.%q]
tls = "none"
auth_file = ""
`, hop(p.authAddr), p.ca.PEMFile, auth, timeouts, hop(sink.Addr), hop(sink.Addr))
	e.WriteConfig()
	o := pass(t, e, append(msgs(5, "auth relay", "r@remote.example"), msgs(5, "internal", "x@internal.example")...))
	report(t, "postfix smtpd + sink", postfixVersion(t), "AUTH smarthost beside a plain internal route", o, 10, 0, 0, 60*time.Second)
	if n := p.held(5); n != 5 {
		t.Errorf("Postfix (AUTH only) holds %d messages, want 5", n)
	}
	if n := len(sink.Subjects()); n != 5 {
		t.Errorf("smtp-sink got %d messages, want 5", n)
	}
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	if !strings.Contains(string(b), "sasl_username=alice") {
		t.Errorf("Postfix logged no AUTH of alice:\n%s", b)
	}
}
