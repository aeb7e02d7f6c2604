package launchers

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// cronJob is the one job line of contrib/cron/smtp-bs and the variables
// the file sets for it.
type cronJob struct {
	Schedule, User, Command string
	Env                     []string
}

func parseCron(t *testing.T) cronJob {
	t.Helper()
	var job cronJob
	n := 0
	for _, l := range strings.Split(contrib(t, "cron/smtp-bs"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 1 && strings.Contains(l, "=") {
			job.Env = append(job.Env, l)
			continue
		}
		if len(f) < 7 {
			t.Fatalf("contrib/cron/smtp-bs: not a cron.d job line: %q", l)
		}
		job.Schedule, job.User = strings.Join(f[:5], " "), f[5]
		// The command is the rest of the line, as cron hands it to the shell.
		i := strings.Index(l, " "+job.User+" ")
		job.Command = strings.TrimSpace(l[i+len(job.User)+2:])
		n++
	}
	if n != 1 {
		t.Fatalf("contrib/cron/smtp-bs: %d job lines, want 1", n)
	}
	return job
}

func TestCronLine(t *testing.T) {
	job := parseCron(t)
	if job.Schedule != "*/10 * * * *" || job.User != "mail" {
		t.Errorf("cron line runs %q as %q, want every 10 minutes as mail", job.Schedule, job.User)
	}
	if !strings.Contains(job.Command, "qrun -once") {
		t.Errorf("cron command %q does not run qrun -once", job.Command)
	}
	if !strings.Contains(contrib(t, "cron/smtp-bs"), "lock") {
		t.Error("contrib/cron/smtp-bs does not say why overlapping runs are harmless (the lock)")
	}
}

// runCronLine runs the cron line's command as cron would: as its user,
// through /bin/sh -c, with the file's variables; paths substituted. The
// spool has no lockfile before, so the one qrun creates shows who it ran
// as.
func runCronLine(t *testing.T, cfg, spool string) {
	t.Helper()
	job := parseCron(t)
	cmd := substitute(t, job.Command, "/usr/local/sbin/qrun", testenv.Bin(t, "qrun"), "/etc/smtp-bs/smtp-bs.toml", cfg)
	lock := filepath.Join(spool, "lock")
	if _, err := os.Stat(lock); err == nil {
		t.Fatal("the spool has a lockfile already: it would not show who qrun ran as")
	}
	runuser := testenv.Need(t, "runuser")
	out, code := run(t, job.Env, runuser, "-u", job.User, "--", "/bin/sh", "-c", cmd)
	if code != 0 {
		t.Fatalf("cron line %q exited %d:\n%s", cmd, code, out)
	}
	assertLockIsMail(t, lock)
}

func assertLockIsMail(t *testing.T, lock string) {
	t.Helper()
	m := mail(t)
	uid, gid, mode := owner(t, lock)
	if uid != m.UID || gid != m.GID || mode&0o077 != 0 {
		t.Fatalf("lockfile qrun created is %d:%d %04o, want mail (%d:%d) 0600", uid, gid, mode, m.UID, m.GID)
	}
}

// unitExec returns the argv of a unit's ExecStart with paths substituted,
// and the User= and Group= it runs as.
func unitExec(t *testing.T, unit, cfg string) (argv []string, user, group string) {
	t.Helper()
	u := parseUnit(t, contrib(t, "systemd/"+unit))
	s := u["Service"]
	if len(s["ExecStart"]) != 1 || len(s["User"]) != 1 || len(s["Group"]) != 1 {
		t.Fatalf("%s: want one ExecStart, User and Group", unit)
	}
	line := substitute(t, s["ExecStart"][0],
		"/usr/local/sbin/qrun", testenv.Bin(t, "qrun"),
		"/usr/local/sbin/smtp-bs", testenv.Bin(t, "smtp-bs"),
		"/etc/smtp-bs/smtp-bs.toml", cfg)
	if strings.ContainsAny(line, `"'\$%`) {
		t.Fatalf("%s: ExecStart %q needs systemd's quoting rules; keep it plain", unit, line)
	}
	return strings.Fields(line), s["User"][0], s["Group"][0]
}

// asUnitUser wraps argv in setpriv as systemd's User= and Group= do: that
// user and group, with the user's supplementary groups.
func asUnitUser(t *testing.T, user, group string, argv ...string) []string {
	t.Helper()
	setpriv := testenv.Need(t, "setpriv")
	return append([]string{setpriv, "--reuid=" + user, "--regid=" + group, "--init-groups", "--"}, argv...)
}

// runTimerUnit runs what qrun.timer starts: qrun.service's ExecStart as
// its User and Group.
func runTimerUnit(t *testing.T, cfg, spool string) {
	t.Helper()
	timer := parseUnit(t, contrib(t, "systemd/qrun.timer"))
	if u := timer["Timer"]["Unit"]; len(u) > 0 && u[0] != "qrun.service" {
		t.Fatalf("qrun.timer starts %v, want qrun.service", u)
	}
	argv, user, group := unitExec(t, "qrun.service", cfg)
	lock := filepath.Join(spool, "lock")
	if _, err := os.Stat(lock); err == nil {
		t.Fatal("the spool has a lockfile already: it would not show who qrun ran as")
	}
	full := asUnitUser(t, user, group, argv...)
	out, code := run(t, nil, full[0], full[1:]...)
	if code != 0 {
		t.Fatalf("qrun.service ExecStart %q exited %d:\n%s", argv, code, out)
	}
	assertLockIsMail(t, lock)
}

// TestQrunDaemon runs qrun-daemon.service's ExecStart as its user, checks
// the running loop's identity in /proc, and stops it with SIGTERM, which
// must end it cleanly.
func TestQrunDaemon(t *testing.T) {
	testenv.NeedRoot(t, "qrun-daemon.service's ExecStart runs as user mail")
	env := testenv.New(t)
	argv, user, group := unitExec(t, "qrun-daemon.service", env.CfgFile)
	full := asUnitUser(t, user, group, argv...)
	checkQrunLoop(t, env, full)
}

// TestQrunAsRootDrops starts the qrun loop as root: it must become mail,
// with mail's groups only, before it touches the spool.
func TestQrunAsRootDrops(t *testing.T) {
	testenv.NeedRoot(t, "qrun started as root must drop to mail")
	env := testenv.New(t)
	checkQrunLoop(t, env, []string{testenv.Bin(t, "qrun"), "-config", env.CfgFile, "-interval", "1h"})
}

func checkQrunLoop(t *testing.T, env *testenv.Env, argv []string) {
	t.Helper()
	cmd := testenv.Start(t, argv[0], argv[1:]...)
	lock := filepath.Join(env.SpoolDir, "lock")
	waitFor(t, "qrun to take the lock", func() bool { _, err := os.Stat(lock); return err == nil })
	got, err := procIDs(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	assertMail(t, "qrun loop", got, mail(t))
	assertLockIsMail(t, lock)
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("qrun after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("qrun did not stop on SIGTERM")
	}
}
