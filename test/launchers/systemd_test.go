package launchers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// parseUnit reads a systemd unit file: section -> key -> values in order.
func parseUnit(t *testing.T, text string) map[string]map[string][]string {
	t.Helper()
	u := map[string]map[string][]string{}
	sec := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
			if u[sec] == nil {
				u[sec] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("not a unit file line: %q", l)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

var units = []string{"smtp-bs.socket", "smtp-bs@.service", "qrun.service", "qrun.timer", "qrun-daemon.service"}

// submissionUnits serve ports 587 and 465 with contrib/submission.toml.
var submissionUnits = []string{"smtp-bs-submission.socket", "smtp-bs-submission@.service",
	"smtp-bs-smtps.socket", "smtp-bs-smtps@.service"}

func TestSystemdUnits(t *testing.T) {
	sock := parseUnit(t, contrib(t, "systemd/smtp-bs.socket"))["Socket"]
	want := map[string]string{"ListenStream": "25", "Accept": "yes"}
	for k, v := range want {
		if len(sock[k]) != 1 || sock[k][0] != v {
			t.Errorf("smtp-bs.socket: %s=%v, want %s", k, sock[k], v)
		}
	}
	for _, k := range []string{"MaxConnections", "MaxConnectionsPerSource"} {
		if len(sock[k]) != 1 {
			t.Errorf("smtp-bs.socket: no %s=", k)
		} else if _, err := strconv.Atoi(sock[k][0]); err != nil {
			t.Errorf("smtp-bs.socket: %s=%s", k, sock[k][0])
		}
	}
	for _, name := range []string{"smtp-bs@.service", "qrun.service", "qrun-daemon.service"} {
		s := parseUnit(t, contrib(t, "systemd/"+name))["Service"]
		for k, v := range map[string]string{"User": "mail", "Group": "mail", "ProtectSystem": "strict", "NoNewPrivileges": "yes"} {
			if len(s[k]) != 1 || s[k][0] != v {
				t.Errorf("%s: %s=%v, want %s", name, k, s[k], v)
			}
		}
		if len(s["ReadWritePaths"]) == 0 || s["ReadWritePaths"][0] != "/var/spool/smtp-bs" {
			t.Errorf("%s: ReadWritePaths=%v, want the spool first", name, s["ReadWritePaths"])
		}
	}
	// The session takes its connection as fd 3; stdio is the journal.
	s := parseUnit(t, contrib(t, "systemd/smtp-bs@.service"))["Service"]
	if len(s["StandardInput"]) != 0 || len(s["StandardError"]) != 1 || s["StandardError"][0] != "journal" {
		t.Errorf("smtp-bs@.service: StandardInput=%v StandardError=%v, want the fd-3 hand-off and the journal",
			s["StandardInput"], s["StandardError"])
	}
	if s := parseUnit(t, contrib(t, "systemd/qrun.service"))["Service"]; s["Type"][0] != "oneshot" || !strings.Contains(s["ExecStart"][0], " -once") {
		t.Errorf("qrun.service: Type=%v ExecStart=%v, want a oneshot qrun -once", s["Type"], s["ExecStart"])
	}

	// The timer fires every 10 minutes, like the cron line.
	timer := parseUnit(t, contrib(t, "systemd/qrun.timer"))["Timer"]
	if len(timer["OnCalendar"]) != 1 {
		t.Fatalf("qrun.timer: OnCalendar=%v", timer["OnCalendar"])
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil || os.Getenv("CI") == "true" {
		sa := testenv.Need(t, "systemd-analyze")
		out, code := run(t, []string{"TZ=UTC"}, sa, "calendar", "--iterations=3", timer["OnCalendar"][0])
		if code != 0 {
			t.Fatalf("systemd-analyze calendar: %s", out)
		}
		var at []time.Time
		for _, m := range regexp.MustCompile(`(?m)(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC$`).FindAllStringSubmatch(out, -1) {
			ts, err := time.Parse("2006-01-02 15:04:05", m[1])
			if err != nil {
				t.Fatal(err)
			}
			at = append(at, ts)
		}
		if len(at) != 3 || at[1].Sub(at[0]) != 10*time.Minute || at[2].Sub(at[1]) != 10*time.Minute || at[0].Minute()%10 != 0 {
			t.Errorf("OnCalendar=%s fires at %v, want every 10 minutes at :00, :10, ...\n%s", timer["OnCalendar"][0], at, out)
		}
	}
}

// exposure runs systemd-analyze security --offline=true on a unit file and
// returns the overall exposure figure.
func exposure(t *testing.T, sa, file string) float64 {
	t.Helper()
	out, code := run(t, nil, sa, "security", "--offline=true", "--no-pager", file)
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security %s (exit %d):\n%s", file, code, out)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

// TestSystemdSecurity holds the sandbox to its figures: smtp-bs@.service
// at 1.5 or lower (also with the DNS drop-in), the qrun units at 2.5 or
// lower (they need the network).
func TestSystemdSecurity(t *testing.T) {
	sa := testenv.Need(t, "systemd-analyze")
	dir := filepath.Join(testenv.Root(), "contrib", "systemd")
	withDNS := filepath.Join(t.TempDir(), "smtp-bs@.service")
	if err := os.WriteFile(withDNS, []byte(contrib(t, "systemd/smtp-bs@.service")+"\n"+contrib(t, "systemd/smtp-bs-dns.conf")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, file string
		max        float64
	}{
		{"smtp-bs@.service", filepath.Join(dir, "smtp-bs@.service"), 1.5},
		{"smtp-bs@.service with smtp-bs-dns.conf", withDNS, 1.5},
		{"qrun.service", filepath.Join(dir, "qrun.service"), 2.5},
		{"qrun-daemon.service", filepath.Join(dir, "qrun-daemon.service"), 2.5},
	} {
		got := exposure(t, sa, c.file)
		t.Logf("exposure of %s: %.1f (limit %.1f)", c.name, got, c.max)
		if got > c.max {
			t.Errorf("exposure of %s is %.1f, above %.1f", c.name, got, c.max)
		}
	}
}

// TestSystemdVerify installs into a DESTDIR with make's install script and
// runs systemd-analyze verify --root on it: the units as installed, their
// ExecStart binaries present and executable in that root. The host's
// system units are copied in, since the units' default dependencies
// (sysinit.target, sockets.target, ...) must resolve.
func TestSystemdVerify(t *testing.T) {
	sa := testenv.Need(t, "systemd-analyze")
	sysunits := "/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(sysunits, "sysinit.target")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no %s/sysinit.target: systemd's units are needed to verify against", sysunits)
		}
		t.Skip("systemd's own units are not installed")
	}
	d := destdir(t)
	out, code := installScript(t, d, "", "install")
	if code != 0 {
		t.Fatalf("install.sh install: exit %d\n%s", code, out)
	}
	os.MkdirAll(filepath.Join(d, "lib", "systemd"), 0o755)
	if out, err := exec.Command("cp", "-a", sysunits, filepath.Join(d, "lib", "systemd")+"/").CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	names := []string{"smtp-bs.socket", "smtp-bs@1.service", "qrun.service", "qrun.timer", "qrun-daemon.service"}
	check := func(what string) {
		out, code := run(t, nil, sa, append([]string{"verify", "--root=" + d}, names...)...)
		if code != 0 || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: exit %d\n%s", what, code, out)
		}
	}
	check("the installed units")

	// With the DNS drop-in where its comment says to put it.
	dropin := filepath.Join(d, "etc", "systemd", "system", "smtp-bs@.service.d")
	os.MkdirAll(dropin, 0o755)
	b, err := os.ReadFile(filepath.Join(d, "usr", "local", "share", "smtp-bs", "systemd", "smtp-bs-dns.conf"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dropin, "dns.conf"), b, 0o644)
	check("with the DNS drop-in")

	// verify does see problems here: a unit whose binary is missing fails.
	os.Remove(filepath.Join(d, "usr", "local", "sbin", "qrun"))
	if out, code := run(t, nil, sa, "verify", "--root="+d, "qrun.service"); code == 0 || !strings.Contains(out, "qrun") {
		t.Errorf("verify did not notice the missing qrun: exit %d\n%s", code, out)
	}
}

// TestSocketActivate runs smtp-bs under systemd-socket-activate --accept,
// the fd-3 hand-off of smtp-bs.socket with Accept=yes, twice: with the
// launcher as root (smtp-bs drops to mail itself) and as smtp-bs@.service's
// User= and Group= (setpriv, as systemd does). Each session must run as
// mail with mail's groups only and spool a mail-owned 0600 message; then
// qrun.timer's unit delivers it, as mail.
func TestSocketActivate(t *testing.T) {
	testenv.NeedRoot(t, "the sessions switch to user mail (setpriv, as systemd does)")
	for _, asUnit := range []bool{false, true} {
		name := "launcher as root"
		if asUnit {
			name = "launcher as the unit's user"
		}
		t.Run(name, func(t *testing.T) {
			ssa := testenv.Need(t, "systemd-socket-activate")
			m := mail(t)
			sink := testenv.NewSink(t)
			env := testenv.New(t)
			env.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
			env.WriteConfig()

			argv, user, group := unitExec(t, "smtp-bs@.service", env.CfgFile)
			addr := testenv.FreePort(t)
			launcher := append([]string{ssa, "-l", addr, "--accept"}, argv...)
			if asUnit {
				launcher = asUnitUser(t, user, group, launcher...)
			}
			l := testenv.Start(t, launcher[0], launcher[1:]...)
			listening(t, addr)

			d, pid := session(t, addr, l.Process.Pid)
			got, err := procIDs(pid)
			if err != nil {
				t.Fatal(err)
			}
			assertMail(t, "smtp-bs under systemd-socket-activate", got, m)
			id := sendAndQuit(t, d, "via socket activation")
			queuedFiles(t, env.SpoolDir, id)
			assertSpoolMail(t, env.SpoolDir, m)

			runTimerUnit(t, env.CfgFile, env.SpoolDir)
			if msgs := sink.Messages(); len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: via socket activation") {
				t.Fatalf("sink got %d messages, want the one sent", len(msgs))
			}
			assertSpoolMail(t, env.SpoolDir, m)
		})
	}
}
