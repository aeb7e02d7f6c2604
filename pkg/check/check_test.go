package check

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
)

func TestCan(t *testing.T) {
	id := who{&privilege.Identity{Name: "mail", UID: 8, GID: 8, Groups: []int{8, 100}}}
	cases := []struct {
		uid, gid, mode, bit uint32
		want                bool
	}{
		{8, 8, 0o600, 4, true},
		{8, 8, 0o060, 4, false}, // the owner class applies, not the group's
		{0, 8, 0o640, 4, true},
		{0, 100, 0o640, 4, true}, // a supplementary group
		{0, 0, 0o640, 4, false},
		{0, 0, 0o644, 4, true},
		{0, 8, 0o750, 1, true},
		{0, 0, 0o750, 1, false},
		{0, 8, 0o604, 4, false}, // the group class applies, not others'
	}
	for _, c := range cases {
		st := &syscall.Stat_t{Uid: c.uid, Gid: c.gid, Mode: c.mode}
		if got := id.can(st, c.bit); got != c.want {
			t.Errorf("can(%d:%d %04o, %o) = %v, want %v", c.uid, c.gid, c.mode, c.bit, got, c.want)
		}
	}
}

func TestLoginShell(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(pw, []byte("root:x:0:0:root:/root:/bin/bash\nmail:x:8:8:mail:/var/mail:/usr/sbin/nologin\nnews:x:9:9::/:\n"), 0o644)
	for _, c := range []struct {
		name, shell    string
		found, nologin bool
	}{
		{"mail", "/usr/sbin/nologin", true, true},
		{"root", "/bin/bash", true, false},
		{"news", "", true, false}, // empty means /bin/sh
		{"nobody", "", false, false},
	} {
		shell, found, err := loginShell(pw, c.name)
		if err != nil || shell != c.shell || found != c.found || (found && noLogin(shell) != c.nologin) {
			t.Errorf("%s: shell %q found %v err %v", c.name, shell, found, err)
		}
	}
	if !noLogin("/bin/false") || !noLogin("/sbin/nologin") || noLogin("/bin/sh") {
		t.Error("noLogin")
	}
}

func TestExit(t *testing.T) {
	r := &Report{}
	if r.Exit() != sysexits.OK {
		t.Error("empty report must exit 0")
	}
	r.Findings = []Finding{{Kind: Permission}}
	if r.Exit() != sysexits.NoPerm {
		t.Error("permission finding must exit 77")
	}
	r.Findings = append(r.Findings, Finding{Kind: Config}, Finding{Kind: Permission})
	if r.Exit() != sysexits.Config {
		t.Error("a config finding must exit 78")
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/spool/smtp-bs": "/var/spool/smtp-bs",
		"/a b":               "'/a b'",
		"/it's":              `'/it'\''s'`,
		"/x;rm -rf /":        "'/x;rm -rf /'",
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %q, want %q", in, got, want)
		}
	}
}

// install is a correct installation in a temporary directory, as make
// install leaves it: binaries root:root 0755, the config directory
// root:mail 0750, the config root:mail 0640, the spool mail:mail 0700.
type install struct {
	root, etc, conf, spool, bin, allow, deny, auth string
	cert, key, creds, aliases, progs               string
	mail                                           string
}

func newInstall(t *testing.T) *install {
	t.Helper()
	needRoot(t)
	r := t.TempDir()
	for d := r; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	in := &install{
		root:  r,
		etc:   filepath.Join(r, "etc", "smtp-bs"),
		spool: filepath.Join(r, "var", "spool", "smtp-bs"),
		bin:   filepath.Join(r, "sbin"),
		allow: filepath.Join(r, "etc", "hosts.allow"),
		deny:  filepath.Join(r, "etc", "hosts.deny"),
		auth:  filepath.Join(r, "etc", "smtp-bs", "auth"),
	}
	in.conf = filepath.Join(in.etc, "smtp-bs.toml")
	in.cert, in.key, in.creds = filepath.Join(in.etc, "cert.pem"), filepath.Join(in.etc, "key.pem"), filepath.Join(in.etc, "credentials")
	in.aliases, in.progs = filepath.Join(r, "etc", "aliases"), filepath.Join(r, "etc", "smrsh")
	in.mail = filepath.Join(r, "var", "mail")
	mkdir(t, filepath.Dir(in.mail), 0o755, "root:root")
	mkdir(t, in.mail, 0o2775, "root:mail")
	write(t, filepath.Join(in.mail, "nobody"), "", 0o660, "nobody:mail")
	mkdir(t, in.etc, 0o750, "root:mail")
	mkdir(t, in.bin, 0o755, "root:root")
	mkdir(t, in.progs, 0o755, "root:root")
	write(t, in.conf, fmt.Sprintf(`[spool]
dir = %q
[delivery]
auth_file = %q
[tcpwrap]
allow_file = %q
deny_file = %q
[tls]
cert_file = %q
key_file = %q
[auth]
credentials_file = %q
[local]
domains = ["local.test"]
aliases = %q
program_dir = %q
mail_spool = %q
`, in.spool, in.auth, in.allow, in.deny, in.cert, in.key, in.creds, in.aliases, in.progs, in.mail), 0o640, "root:mail")
	_, certPEM, keyPEM := testenv.NewCA(t, r).Leaf(t, "mx.local.test")
	write(t, in.cert, string(certPEM), 0o644, "root:root")
	write(t, in.key, string(keyPEM), 0o640, "root:mail")
	write(t, in.creds, "user:hash", 0o640, "root:mail")
	write(t, in.aliases, "postmaster: root\n", 0o644, "root:root")
	write(t, filepath.Join(in.progs, "vacation"), "#!/bin/sh\n", 0o755, "root:root")
	write(t, in.allow, "smtp-bs: 127.0.0.1\n", 0o644, "root:root")
	write(t, in.deny, "smtp-bs: ALL\n", 0o644, "root:root")
	write(t, in.auth, "user:secret\n", 0o600, "mail:mail")
	for _, b := range []string{"smtp-bs", "qrun"} {
		write(t, filepath.Join(in.bin, b), "#!/bin/sh\n", 0o755, "root:root")
	}
	mkdir(t, filepath.Dir(in.spool), 0o755, "root:root")
	if _, err := spool.Create(in.spool, spool.Ops{}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(in.spool, "queue", "0001"), "envelope", 0o600, "root:root")
	write(t, filepath.Join(in.spool, "data", "0001"), "message", 0o600, "root:root")
	write(t, filepath.Join(in.spool, "lock"), "", 0o600, "root:root")
	sh(t, "chown -R mail:mail "+in.spool)
	return in
}

func (in *install) audit(t *testing.T) *Audit {
	t.Helper()
	src, err := os.ReadFile(in.conf)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(in.conf, src)
	if err != nil {
		t.Fatal(err)
	}
	return &Audit{
		Config:     cfg,
		ConfigPath: in.conf,
		Binaries:   []string{filepath.Join(in.bin, "smtp-bs"), filepath.Join(in.bin, "qrun")},
		Qrun:       testenv.Bin(t, "qrun"),
	}
}

func TestCorrectInstallPasses(t *testing.T) {
	in := newInstall(t)
	rep := in.audit(t).Run()
	if len(rep.Findings) > 0 || rep.Exit() != 0 {
		var b strings.Builder
		rep.Write(&b, "test")
		t.Fatalf("a correct install has findings:\n%s", b.String())
	}
	if len(rep.OK) < 8 {
		t.Errorf("too little checked: %q", rep.OK)
	}
}

// TestEachProblemAndItsFix breaks one thing at a time, expects the audit to
// name the path and a fix, runs the fix as given, and expects a clean
// audit afterwards: the fix is the exact command.
func TestEachProblemAndItsFix(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(in *install) string // returns the path the finding must name
		code   int
		fix    string // a part of the fix
	}{
		{"spool world-readable", func(in *install) string { chmod(t, in.spool, 0o755); return in.spool }, 77, "chmod"},
		{"mail spool not writable by group mail", func(in *install) string { chmod(t, in.mail, 0o755); return in.mail }, 77, "chmod 2775"},
		{"mail spool world-writable", func(in *install) string { chmod(t, in.mail, 0o777); return in.mail }, 77, "chmod 2775"},
		{"mailbox owned by mail", func(in *install) string {
			p := filepath.Join(in.mail, "nobody")
			sh(t, "chown mail "+p)
			return p
		}, 77, "chown nobody:mail"},
		{"spool owned by root", func(in *install) string { sh(t, "chown root:root "+in.spool); return in.spool }, 77, "chown -R mail:mail"},
		{"spool group owned by root", func(in *install) string { sh(t, "chgrp root "+in.spool); return in.spool }, 77, "chown -R mail:mail"},
		{"spool setgid", func(in *install) string { chmod(t, in.spool, 0o2700); return in.spool }, 77, "ug-s"},
		{"spool without owner write", func(in *install) string { chmod(t, in.spool, 0o500); return in.spool }, 77, "u=rwx"},
		{"subdir group-readable", func(in *install) string {
			p := filepath.Join(in.spool, "queue")
			chmod(t, p, 0o750)
			return p
		}, 77, "chmod"},
		{"subdir missing", func(in *install) string { os.Remove(filepath.Join(in.spool, "hold")); return in.spool }, 78, "-init"},
		{"spool missing", func(in *install) string { os.RemoveAll(in.spool); return in.spool }, 78, "-init"},
		{"message world-readable", func(in *install) string {
			chmod(t, filepath.Join(in.spool, "data", "0001"), 0o644)
			return filepath.Join(in.spool, "data")
		}, 77, "chmod -R go="},
		{"message owned by root", func(in *install) string {
			sh(t, "chown root:root "+filepath.Join(in.spool, "queue", "0001"))
			return filepath.Join(in.spool, "queue")
		}, 77, "chown -R mail:mail"},
		{"lockfile owned by root", func(in *install) string {
			p := filepath.Join(in.spool, "lock")
			sh(t, "chown root:root "+p)
			return p
		}, 77, "chown mail:mail"},
		{"lockfile world-writable", func(in *install) string {
			p := filepath.Join(in.spool, "lock")
			chmod(t, p, 0o666)
			return p
		}, 77, "chmod 0600"},
		{"config world-readable", func(in *install) string { chmod(t, in.conf, 0o644); return in.conf }, 77, "chmod 0640"},
		{"config group-writable", func(in *install) string { chmod(t, in.conf, 0o660); return in.conf }, 77, "chmod 0640"},
		{"config owned by mail", func(in *install) string { sh(t, "chown mail "+in.conf); return in.conf }, 77, "chown root:mail"},
		{"config unreadable by mail", func(in *install) string { sh(t, "chown root:root "+in.conf); return in.conf }, 77, "chown root:mail"},
		{"config dir owned by mail", func(in *install) string { sh(t, "chown mail "+in.etc); return in.etc }, 77, "chown root:mail"},
		{"config dir closed to mail", func(in *install) string { sh(t, "chgrp root "+in.etc); return in.etc }, 77, "chmod 0750"},
		{"config dir world-writable", func(in *install) string { chmod(t, in.etc, 0o777); return in.etc }, 77, "chmod 0750"},
		{"binary setuid", func(in *install) string {
			p := filepath.Join(in.bin, "qrun")
			chmod(t, p, 0o4755)
			return p
		}, 77, "chmod 0755"},
		{"binary setgid", func(in *install) string {
			p := filepath.Join(in.bin, "smtp-bs")
			chmod(t, p, 0o2755)
			return p
		}, 77, "chmod 0755"},
		{"binary owned by mail", func(in *install) string {
			p := filepath.Join(in.bin, "smtp-bs")
			sh(t, "chown mail "+p)
			return p
		}, 77, "chown root:root"},
		{"binary writable by group mail", func(in *install) string {
			p := filepath.Join(in.bin, "qrun")
			sh(t, "chgrp mail "+p)
			chmod(t, p, 0o775)
			return p
		}, 77, "chown root:root"},
		{"binary directory writable by mail", func(in *install) string { sh(t, "chown mail "+in.bin); return in.bin }, 77, "chown root"},
		{"spool parent world-writable", func(in *install) string {
			p := filepath.Dir(in.spool)
			chmod(t, p, 0o777)
			return p
		}, 77, "chmod go-w"},
		{"hosts.allow writable by mail", func(in *install) string { sh(t, "chown mail "+in.allow); return in.allow }, 77, "chown root:root"},
		{"hosts.deny unreadable by mail", func(in *install) string { chmod(t, in.deny, 0o600); return in.deny }, 77, "chmod 0644"},
		{"auth file readable by others", func(in *install) string { chmod(t, in.auth, 0o640); return in.auth }, 77, "chmod 0600"},
		{"TLS key readable by everyone", func(in *install) string { chmod(t, in.key, 0o644); return in.key }, 77, "chmod 0640"},
		{"TLS key owned by mail", func(in *install) string { sh(t, "chown mail "+in.key); return in.key }, 77, "chown root:mail"},
		{"TLS certificate unreadable by mail", func(in *install) string { chmod(t, in.cert, 0o600); return in.cert }, 77, "chmod 0644"},
		{"credentials readable by everyone", func(in *install) string { chmod(t, in.creds, 0o644); return in.creds }, 77, "chmod 0640"},
		{"aliases writable by group mail", func(in *install) string {
			sh(t, "chgrp mail "+in.aliases)
			chmod(t, in.aliases, 0o664)
			return in.aliases
		}, 77, "chown root:root"},
		{"program writable by mail", func(in *install) string {
			p := filepath.Join(in.progs, "vacation")
			sh(t, "chown mail "+p)
			return p
		}, 77, "chown root:root"},
		{"program directory writable by mail", func(in *install) string { sh(t, "chown mail "+in.progs); return in.progs }, 77, "chmod go-w"},
		{"auth file owned by root", func(in *install) string { sh(t, "chown root:root "+in.auth); return in.auth }, 77, "chown mail:mail"},
		// What user mail (or group mail) can do in the mail spool: the fix
		// must never chown one user's mail to another (notFix below).
		{"mailbox hard link to another's", func(in *install) string {
			asMail(t, "ln "+filepath.Join(in.mail, "nobody")+" "+filepath.Join(in.mail, "daemon"))
			return filepath.Join(in.mail, "daemon")
		}, 77, "rm -- "},
		{"own mailbox with a second name", func(in *install) string {
			asMail(t, "mkdir "+filepath.Join(in.mail, "x")+" && ln "+filepath.Join(in.mail, "nobody")+" "+filepath.Join(in.mail, "x", "copy"))
			return filepath.Join(in.mail, "nobody")
		}, 77, "cp -p"},
		{"mailbox symlink", func(in *install) string {
			asMail(t, "ln -s /etc/shadow "+filepath.Join(in.mail, "daemon"))
			return filepath.Join(in.mail, "daemon")
		}, 77, "rm -- "},
		{"mailbox FIFO", func(in *install) string {
			asMail(t, "mkfifo "+filepath.Join(in.mail, "daemon"))
			return filepath.Join(in.mail, "daemon")
		}, 77, "mv --backup"},
		{"mailbox directory", func(in *install) string {
			asMail(t, "mkdir "+filepath.Join(in.mail, "daemon"))
			return filepath.Join(in.mail, "daemon")
		}, 77, "mv --backup"},
		{"mailbox of another user", func(in *install) string {
			p := filepath.Join(in.mail, "daemon")
			write(t, p, "From x\n", 0o660, "nobody:mail")
			return p
		}, 77, "mv --backup"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := newInstall(t)
			path := c.break_(in)
			rep := in.audit(t).Run()
			var out strings.Builder
			rep.Write(&out, "test")
			if rep.Exit() != c.code {
				t.Fatalf("exit %d, want %d:\n%s", rep.Exit(), c.code, out.String())
			}
			var f *Finding
			for i := range rep.Findings {
				if rep.Findings[i].Path == path {
					f = &rep.Findings[i]
				}
			}
			if f == nil || !strings.Contains(f.Fix, c.fix) {
				t.Fatalf("no finding for %s with a fix containing %q:\n%s", path, c.fix, out.String())
			}
			for _, f := range rep.Findings {
				if strings.Contains(f.Fix, "chown daemon") {
					t.Errorf("a fix hands a mailbox to daemon: %s", f.Fix)
				}
				sh(t, f.Fix)
			}
			if rep := in.audit(t).Run(); len(rep.Findings) > 0 {
				var after strings.Builder
				rep.Write(&after, "test")
				t.Fatalf("after the fixes:\n%s\nstill:\n%s", out.String(), after.String())
			}
		})
	}
}

// smtp-bs parses the TLS pair only at a client's STARTTLS: the audit is
// where a pair that does not load shows up before a client finds it.
func TestTLSPairThatDoesNotLoad(t *testing.T) {
	in := newInstall(t)
	_, _, otherKey := testenv.NewCA(t, t.TempDir()).Leaf(t, "mx.local.test")
	write(t, in.key, string(otherKey), 0o640, "root:mail")
	rep := in.audit(t).Run()
	var out strings.Builder
	rep.Write(&out, "test")
	if rep.Exit() != 78 || len(rep.Findings) != 1 || rep.Findings[0].Path != in.cert ||
		!strings.Contains(rep.Findings[0].Problem, in.key) || !strings.Contains(rep.Findings[0].Problem, "does not match") {
		t.Fatalf("a key of another certificate:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "STARTTLS") {
		t.Errorf("the report does not say what breaks:\n%s", out.String())
	}
}

// The run user's account: fixes here would change the system, so they
// are checked as text only.
func TestRunUser(t *testing.T) {
	in := newInstall(t)
	pw := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(pw, []byte("mail:x:8:8:mail:/var/mail:/bin/bash\n"), 0o644)
	a := in.audit(t)
	a.PasswdFile = pw
	rep := a.Run()
	if rep.Exit() != sysexits.NoPerm || len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Fix, "usermod --shell") ||
		!strings.Contains(rep.Findings[0].Problem, "/bin/bash") {
		t.Errorf("login shell: %+v", rep.Findings)
	}

	a = in.audit(t)
	a.Config.RunAs = "no-such-user-smtp-bs"
	rep = a.Run()
	if rep.Exit() != sysexits.Config || !strings.Contains(rep.Findings[0].Problem, "does not exist") ||
		!strings.Contains(rep.Findings[0].Fix, "useradd") {
		t.Errorf("missing user: %+v", rep.Findings)
	}

	a = in.audit(t)
	a.Lookup = func(string) (*privilege.Identity, error) {
		return &privilege.Identity{Name: "toor", UID: 0, GID: 0, Groups: []int{0}}, nil
	}
	rep = a.Run()
	if rep.Exit() != sysexits.Config || !strings.Contains(rep.Findings[0].Problem, "root") {
		t.Errorf("uid 0: %+v", rep.Findings)
	}
}

// asMail runs a shell command as user mail, as the red team did.
func asMail(t *testing.T, cmd string) {
	t.Helper()
	id, err := privilege.Lookup("mail")
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command("sh", "-c", cmd)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(id.UID), Gid: uint32(id.GID)}}
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("as mail: %s: %v\n%s", cmd, err, out)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[string]string{"mailbox": "2 mailboxes", "entry": "2 entries", "file": "2 files"} {
		if got := count(2, n); got != want {
			t.Errorf("count(2, %q) = %q, want %q", n, got, want)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("these tests need root (to own files as root and mail); CI runs as root")
	}
	t.Skip("needs root: the audit is about files owned by root and by mail")
}

func mkdir(t *testing.T, p string, mode os.FileMode, owner string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, mode)
	sh(t, "chown "+owner+" "+p)
}

func write(t *testing.T, p, content string, mode os.FileMode, owner string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	chmod(t, p, mode)
	sh(t, "chown "+owner+" "+p)
}

func chmod(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	// os.Chmod maps the Go mode bits; setuid and friends need their own.
	m := mode.Perm()
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, cmd string) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}
