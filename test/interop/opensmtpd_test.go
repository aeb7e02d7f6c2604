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

// opensmtpdRoot is where Debian's opensmtpd is unpacked (dpkg -x; it
// conflicts with Postfix as an MTA): $OPENSMTPD_ROOT, or where
// bench/fetch.sh (run by scripts/deps.sh) unpacks it.
func opensmtpdRoot(t *testing.T) string {
	return unpacked(t, "OPENSMTPD_ROOT", "usr/sbin/smtpd", "opensmtpd")
}

// TestOpenSMTPD: OpenSMTPD 6.8 (offers 8BITMIME and DSN, not SMTPUTF8) in
// a mount namespace of its own: its users in a private /etc/passwd, its
// compiled-in /var/spool/smtpd, /var/lib/opensmtpd and /run on directories
// of the test. It relays to a closed port, so what it accepted stays queued;
// its log (smtpd -d) lists one "smtp envelope" per recipient taken.
func TestOpenSMTPD(t *testing.T) {
	root := opensmtpdRoot(t)
	unshare := testenv.Need(t, "unshare")
	testenv.NeedRoot(t, "OpenSMTPD runs in a mount namespace of its own")
	dir := daemonDir(t)
	addr := testenv.FreePort(t)
	withUsers(dir, "opensmtpd:x:64991:64991::/var/lib/opensmtpd/empty:/usr/sbin/nologin\nopensmtpq:x:64992:64992::/var/lib/opensmtpd/empty:/usr/sbin/nologin\n",
		"opensmtpd:x:64991:\nopensmtpq:x:64992:\n")
	host, port, _ := strings.Cut(addr, ":")
	os.WriteFile(filepath.Join(dir, "smtpd.conf"), []byte(fmt.Sprintf("listen on %s port %s\naction \"hold\" relay host smtp://127.0.0.1:9\nmatch from any for any action \"hold\"\n", host, port)), 0o644)
	for _, d := range []string{"spool", "varlib/opensmtpd/empty"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.Chmod(filepath.Join(dir, "spool"), 0o711)
	script := fmt.Sprintf("mount --bind %[1]s/passwd /etc/passwd && mount --bind %[1]s/group /etc/group && "+
		"mount -t tmpfs none /var/spool && mkdir -p /var/spool/smtpd && mount --bind %[1]s/spool /var/spool/smtpd && "+
		"mount --bind %[1]s/varlib /var/lib && mount -t tmpfs none /run && exec %[2]s/usr/sbin/smtpd -d -f %[1]s/smtpd.conf", dir, root)
	out := &daemon{addr: addr}
	out.start(t, exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script), os.Kill, "")
	version := "OpenSMTPD ?"
	if v, err := exec.Command(filepath.Join(root, "usr", "sbin", "smtpd"), "-h").CombinedOutput(); err == nil || len(v) > 0 {
		if f := strings.Fields(strings.SplitN(string(v), "\n", 2)[0]); len(f) == 3 {
			version = "OpenSMTPD " + f[2]
		}
	}
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\n%s", hop(addr), timeouts)
	e.WriteConfig()
	m := append(msgs(5, "opensmtpd", "r@remote.example"),
		msg{from: "sender@client.example", rcpts: []string{"utf8subject@remote.example"}, data: "From: sender@client.example\r\nSubject: Grüße\r\n\r\nZoë\r\n"},
		msg{from: "sender@client.example", rcpts: []string{"utf8from@remote.example"}, data: "From: Zoë <sender@client.example>\r\nSubject: utf-8 from\r\n\r\nhi\r\n"})
	o := pass(t, e, m)
	report(t, "opensmtpd", version, "no SMTPUTF8: UTF-8 Subject converted, From bounced", o, 6, 1, 0, 60*time.Second)
	// The 6 and the bounce for utf8from@, which goes back through it.
	if n := out.count("smtp envelope evpid="); n != 7 {
		t.Errorf("OpenSMTPD took %d envelopes, want 7", n)
	}
}
