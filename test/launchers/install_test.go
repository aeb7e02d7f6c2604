package launchers

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"smtp-bs/internal/testenv"
)

// installEnv pins every directory variable of contrib/install.sh to its
// default, whatever the caller's environment (make exports PREFIX).
var installEnv = []string{"PREFIX=/usr/local", "SBINDIR=", "UNITDIR=", "DATADIR=", "DOCDIR=", "SPOOLDIR=", "RUN_AS="}

// installScript runs contrib/install.sh ACTION into destdir with the
// binaries in bin ("" means the test's own).
func installScript(t *testing.T, destdir, bin, action string) (string, int) {
	t.Helper()
	if bin == "" {
		bin = filepath.Dir(testenv.Bin(t, "smtp-bs"))
	}
	env := append(append([]string{}, installEnv...), "DESTDIR="+destdir, "BUILD="+bin)
	return run(t, env, "sh", filepath.Join(testenv.Root(), "contrib", "install.sh"), action)
}

// destdir is a temporary directory that user mail can reach.
func destdir(t *testing.T) string {
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	return d
}

// snapshot records owner, mode and content of everything below d.
func snapshot(t *testing.T, d string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Lstat(p)
		st := fi.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, st.Mode)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		snap[strings.TrimPrefix(p, d)] = v
		return nil
	})
	return snap
}

func wantOwner(t *testing.T, p string, uid, gid int, mode os.FileMode) {
	t.Helper()
	u, g, m := owner(t, p)
	if u != uid || g != gid || m != mode {
		t.Errorf("%s is %d:%d %04o, want %d:%d %04o", p, u, g, m, uid, gid, mode)
	}
}

// TestMakeInstall installs with "make install DESTDIR=", checks every
// owner and mode, installs again (nothing changes, the config is kept),
// audits the result with -check as root and as mail (clean; then broken
// and fixed with the command -check prints), and uninstalls: the spool
// stays while it holds mail.
func TestMakeInstall(t *testing.T) {
	testenv.NeedRoot(t, "make install chowns the spool to mail and -check audits it as mail")
	mk := testenv.Need(t, "make")
	m := mail(t)
	d := destdir(t)
	bin := filepath.Join(t.TempDir(), "bin")
	args := []string{"-C", testenv.Root(), "install", "DESTDIR=" + d, "BIN=" + bin, "VERSION=test-4.0"}
	for _, kv := range installEnv {
		args = append(args, kv)
	}
	if out, code := run(t, nil, mk, args...); code != 0 {
		t.Fatalf("make install: exit %d\n%s", code, out)
	}

	sbin := filepath.Join(d, "usr/local/sbin")
	for _, b := range []string{"smtp-bs", "qrun"} {
		wantOwner(t, filepath.Join(sbin, b), 0, 0, 0o755)
		if out, _ := run(t, nil, filepath.Join(sbin, b), "-version"); strings.TrimSpace(out) != b+" test-4.0" {
			t.Errorf("%s -version: %q, want the VERSION make was given", b, out)
		}
	}
	etc, conf := filepath.Join(d, "etc/smtp-bs"), filepath.Join(d, "etc/smtp-bs/smtp-bs.toml")
	spool := filepath.Join(d, "var/spool/smtp-bs")
	wantOwner(t, etc, 0, m.GID, 0o750)
	wantOwner(t, conf, 0, m.GID, 0o640)
	if b, _ := os.ReadFile(conf); string(b) != contrib(t, "smtp-bs.toml") {
		t.Error("the installed config is not contrib/smtp-bs.toml")
	}
	wantOwner(t, spool, m.UID, m.GID, 0o700)
	assertSpoolMail(t, spool, m)
	// Every unit the README tells admins to enable, and what they read.
	for _, u := range append(units, submissionUnits...) {
		p := filepath.Join(d, "usr/local/lib/systemd/system", u)
		wantOwner(t, p, 0, 0, 0o644)
	}
	for _, f := range []string{"xinetd/smtp-bs", "cron/smtp-bs", "systemd/smtp-bs-dns.conf", "smtp-bs.toml",
		"submission.toml", "systemd/smtp-bs-jail.conf", "chroot/README"} {
		wantOwner(t, filepath.Join(d, "usr/local/share/smtp-bs", f), 0, 0, 0o644)
	}
	wantOwner(t, filepath.Join(d, "usr/local/share/smtp-bs/chroot/mkjail.sh"), 0, 0, 0o755)

	// Idempotent: a second install changes nothing; an edited config stays.
	before := snapshot(t, d)
	if out, code := installScript(t, d, bin, "install"); code != 0 {
		t.Fatalf("second install: exit %d\n%s", code, out)
	}
	after := snapshot(t, d)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("second install changed %s: %s -> %s", p, v, after[p])
		}
	}
	if len(after) != len(before) {
		t.Errorf("second install: %d entries, before %d", len(after), len(before))
	}

	// Point the installed config at the installed spool, as an admin
	// would edit it; the next install keeps the edit.
	orig := contrib(t, "smtp-bs.toml")
	edited := strings.Replace(orig, `# dir = "/var/spool/smtp-bs"`, fmt.Sprintf("dir = %q", spool), 1)
	if edited == orig {
		t.Fatal(`contrib/smtp-bs.toml has no line # dir = "/var/spool/smtp-bs"`)
	}
	os.WriteFile(conf, []byte(edited), 0o640)
	if out, code := installScript(t, d, bin, "install"); code != 0 || !strings.Contains(out, "kept the existing") {
		t.Fatalf("install over an edited config: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(conf); string(b) != edited {
		t.Fatal("install overwrote the admin's config")
	}

	checkInstalled(t, d, conf, spool)

	// Uninstall: everything goes but a spool that holds mail.
	os.WriteFile(conf, []byte(orig), 0o640)
	msg := filepath.Join(spool, "queue", "0000000000001000001")
	os.WriteFile(msg, []byte("mail"), 0o600)
	os.Chown(msg, m.UID, m.GID)
	out, code := installScript(t, d, bin, "uninstall")
	if code != 0 || !strings.Contains(out, "kept the spool") {
		t.Fatalf("uninstall: exit %d\n%s", code, out)
	}
	for _, gone := range []string{sbin + "/smtp-bs", sbin + "/qrun", etc, filepath.Join(d, "usr/local/share/smtp-bs"),
		filepath.Join(d, "usr/local/share/doc/smtp-bs"), filepath.Join(d, "usr/local/lib/systemd")} {
		if _, err := os.Lstat(gone); err == nil {
			t.Errorf("uninstall left %s", gone)
		}
	}
	if _, err := os.Stat(msg); err != nil {
		t.Fatalf("uninstall removed mail: %v", err)
	}
	os.Remove(msg)
	if out, code := installScript(t, d, bin, "uninstall"); code != 0 || !strings.Contains(out, "removed the empty spool") {
		t.Fatalf("second uninstall: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(spool); err == nil {
		t.Error("an empty spool survived uninstall")
	}
}

var fixRe = regexp.MustCompile(`(?m)^\s+fix: (.*)$`)

// checkInstalled runs both programs' -check on an installed tree, as root
// and as mail.
func checkInstalled(t *testing.T, d, conf, spool string) {
	t.Helper()
	runuser := testenv.Need(t, "runuser")
	check := func(prog string, asMail bool) (string, int) {
		argv := []string{filepath.Join(d, "usr/local/sbin", prog), "-check", "-config", conf}
		if asMail {
			argv = append([]string{runuser, "-u", "mail", "--"}, argv...)
		}
		return run(t, nil, argv[0], argv[1:]...)
	}
	all := func(want int, contains string) string {
		t.Helper()
		var last string
		for _, prog := range []string{"smtp-bs", "qrun"} {
			for _, asMail := range []bool{false, true} {
				out, code := check(prog, asMail)
				if code != want || !strings.Contains(out, contains) {
					t.Fatalf("%s -check (as mail: %v): exit %d, want %d with %q:\n%s", prog, asMail, code, want, contains, out)
				}
				last = out
			}
		}
		return last
	}
	all(0, "all is well")

	breakAndFix := func(what string, breakIt func(), want int, contains string) {
		t.Helper()
		breakIt()
		out := all(want, contains)
		fixes := fixRe.FindAllStringSubmatch(out, -1)
		if len(fixes) == 0 {
			t.Fatalf("%s: -check printed no fix:\n%s", what, out)
		}
		for _, f := range fixes {
			if out, err := exec.Command("sh", "-c", f[1]).CombinedOutput(); err != nil {
				t.Fatalf("%s: the fix %q failed: %v\n%s", what, f[1], err, out)
			}
		}
		all(0, "all is well")
	}
	breakAndFix("spool mode", func() { os.Chmod(spool, 0o755) }, 77, "FAIL  "+spool+": group or others have access")
	breakAndFix("spool owner", func() { os.Chown(filepath.Join(spool, "data"), 0, 0) }, 77, "chown -R mail:mail")
	breakAndFix("config mode", func() { os.Chmod(conf, 0o664) }, 77, "fix: chown root:mail "+conf+" && chmod 0640 "+conf)
	breakAndFix("binary setuid", func() { os.Chmod(filepath.Join(d, "usr/local/sbin/qrun"), 0o755|os.ModeSetuid) }, 77, "setuid")

	// A config only root can read: mail cannot even load it.
	os.Chmod(conf, 0o600)
	if out, code := check("smtp-bs", true); code != 77 || !strings.Contains(out, "cannot read the config as mail") {
		t.Errorf("unreadable config, as mail: exit %d\n%s", code, out)
	}
	if out, code := check("qrun", false); code != 77 || !strings.Contains(out, "mail cannot read it") {
		t.Errorf("unreadable config, as root: exit %d\n%s", code, out)
	}
	os.Chmod(conf, 0o640)

	// A config that does not load is a config problem.
	b, _ := os.ReadFile(conf)
	os.WriteFile(conf, append(b, "\nno_such_key = 1\n"...), 0o640)
	if out, code := check("smtp-bs", false); code != 78 || !strings.Contains(out, "no_such_key") {
		t.Errorf("bad config: exit %d\n%s", code, out)
	}
	os.WriteFile(conf, b, 0o640)
}

// TestInstallNotRoot stages an install as an ordinary user (nobody):
// modes are set, owners cannot be, and the script says so; without
// DESTDIR it refuses.
func TestInstallNotRoot(t *testing.T) {
	testenv.NeedRoot(t, "the staging install runs as nobody, which only root can switch to")
	setpriv := testenv.Need(t, "setpriv")
	// A copy of what install.sh reads, so that nobody can read it wherever
	// the checkout lives.
	src := destdir(t)
	for _, p := range []string{"contrib", "README.md", "docs", "man"} {
		if _, err := os.Stat(filepath.Join(testenv.Root(), p)); err != nil {
			continue
		}
		if out, err := exec.Command("cp", "-r", filepath.Join(testenv.Root(), p), src+"/").CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	exec.Command("chmod", "-R", "a+rX", src).Run()
	d := destdir(t)
	os.Chown(d, 65534, 65534)
	bin := filepath.Dir(testenv.Bin(t, "smtp-bs"))
	asNobody := []string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", filepath.Join(src, "contrib/install.sh"), "install"}
	env := append(append([]string{}, installEnv...), "BUILD="+bin, "DESTDIR="+d)
	out, code := run(t, env, setpriv, asNobody...)
	if code != 0 || !strings.Contains(out, "not root: owners were not set") {
		t.Fatalf("install as nobody: exit %d\n%s", code, out)
	}
	for p, mode := range map[string]os.FileMode{
		"usr/local/sbin/smtp-bs": 0o755, "usr/local/sbin/qrun": 0o755, "etc/smtp-bs": 0o750,
		"etc/smtp-bs/smtp-bs.toml": 0o640, "var/spool/smtp-bs": 0o700, "var/spool/smtp-bs/queue": 0o700,
	} {
		wantOwner(t, filepath.Join(d, p), 65534, 65534, mode)
	}

	env = append(append([]string{}, installEnv...), "BUILD="+bin, "DESTDIR=")
	if out, code := run(t, env, setpriv, asNobody...); code == 0 || !strings.Contains(out, "needs root") {
		t.Errorf("install into / as nobody: exit %d\n%s", code, out)
	}
}
