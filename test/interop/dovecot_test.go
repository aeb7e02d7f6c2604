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

const dovecotConf = `base_dir = {{dir}}/run
state_dir = {{dir}}/state
log_path = {{dir}}/dovecot.log
protocols = lmtp
ssl = no
listen = 127.0.0.1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{{dir}}/mail/%n
first_valid_uid = 8
auth_mechanisms = plain login
passdb {
  driver = static
  args = password=s3cret
}
userdb {
  driver = static
  args = uid=mail gid=mail home={{dir}}/mail/%n
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{port}}
  }
  unix_listener {{dir}}/lmtp {
    mode = 0666
  }
}
service auth {
  unix_listener {{dir}}/auth {
    mode = 0666
  }
}
`

type dovecot struct {
	addr, sock, dir, version string
	auth                     string // SASL for Postfix: every user, password s3cret
}

// startDovecot runs Dovecot's LMTP (from Debian's dovecot-lmtpd) on
// 127.0.0.1 and on a unix socket, delivering into Maildirs under its dir.
func startDovecot(t *testing.T) *dovecot {
	t.Helper()
	bin := testenv.Need(t, "dovecot")
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("Dovecot's LMTP server is not installed (CI=true: install dovecot-lmtpd)")
		}
		t.Skip("Dovecot's LMTP server is not installed: install dovecot-lmtpd")
	}
	testenv.NeedRoot(t, "dovecot starts as root")
	dir := daemonDir(t)
	addr := testenv.FreePort(t)
	_, port, _ := strings.Cut(addr, ":")
	d := &dovecot{addr: addr, sock: filepath.Join(dir, "lmtp"), dir: dir, auth: filepath.Join(dir, "auth")}
	conf := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(conf, []byte(strings.NewReplacer("{{dir}}", dir, "{{port}}", port).Replace(dovecotConf)), 0o644)
	os.MkdirAll(filepath.Join(dir, "mail"), 0o755)
	testenv.Chown(t, filepath.Join(dir, "mail"), "mail")
	v, _ := exec.Command(bin, "--version").Output()
	d.version = "Dovecot " + strings.Fields(string(v) + " ?")[0]
	// dovecot ends its children on SIGINT.
	(&daemon{addr: addr}).start(t, exec.Command(bin, "-F", "-c", conf), os.Interrupt, filepath.Join(dir, "dovecot.log"))
	return d
}

// delivered reads every message in user's Maildir.
func (d *dovecot) delivered(user string) []string {
	var out []string
	files, _ := filepath.Glob(filepath.Join(d.dir, "mail", user, "new", "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		out = append(out, string(b))
	}
	return out
}

// TestDovecotLMTP: local delivery over LMTP, by TCP and by unix socket,
// into Dovecot, which adds Return-Path and Delivered-To itself: each
// message carries one of each, not two.
func TestDovecotLMTP(t *testing.T) {
	d := startDovecot(t)
	for _, c := range []struct{ name, lmtp, user string }{{"TCP", d.addr, "ann"}, {"unix socket", "unix:" + d.sock, "bob"}} {
		e := testenv.New(t)
		e.Extra["local"] = fmt.Sprintf("domains = [\"lmtp.example\"]\nmailbox = \"lmtp\"\nlmtp = %q\n", c.lmtp)
		e.Extra["delivery"] = timeouts
		e.WriteConfig()
		o := pass(t, e, msgs(5, "lmtp "+c.name, c.user+"@lmtp.example"))
		report(t, "dovecot lmtp", d.version, "LMTP over "+c.name+", headers not doubled", o, 5, 0, 0, 30*time.Second)
		got := d.delivered(c.user)
		if len(got) != 5 {
			t.Errorf("%s: Dovecot stored %d messages, want 5", c.name, len(got))
		}
		for _, m := range got {
			hdr, _, _ := strings.Cut(m, "\n\n")
			if n, k := strings.Count(hdr, "\nReturn-Path:")+strings.Count(hdr[:min(len(hdr), 12)], "Return-Path:"), strings.Count(hdr, "Delivered-To:"); n != 1 || k != 1 {
				t.Errorf("%s: %d Return-Path and %d Delivered-To fields, want 1 and 1:\n%s", c.name, n, k, hdr)
				break
			}
		}
	}
}
