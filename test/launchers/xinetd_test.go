package launchers

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// xinetdConf is contrib/xinetd/smtp-bs for a test: the server and its
// config path substituted, and bind, port and type = UNLISTED added so it
// listens on 127.0.0.1:port instead of *:25. Nothing else changes, which
// this checks.
func xinetdConf(t *testing.T, port, server, cfg string) string {
	t.Helper()
	orig := contrib(t, "xinetd/smtp-bs")
	serverRe := regexp.MustCompile(`(?m)^(\s*server\s*=\s*)/usr/local/sbin/smtp-bs$`)
	argsRe := regexp.MustCompile(`(?m)^(\s*server_args\s*=\s*-config\s+)/etc/smtp-bs/smtp-bs\.toml$`)
	if !serverRe.MatchString(orig) || !argsRe.MatchString(orig) {
		t.Fatal("contrib/xinetd/smtp-bs: no server = /usr/local/sbin/smtp-bs or server_args = -config /etc/smtp-bs/smtp-bs.toml")
	}
	s := serverRe.ReplaceAllString(orig, "${1}"+server)
	s = argsRe.ReplaceAllString(s, "${1}"+cfg)
	open := regexp.MustCompile(`(?m)^\{\n`)
	if len(open.FindAllString(s, -1)) != 1 {
		t.Fatal("contrib/xinetd/smtp-bs: want exactly one service block")
	}
	s = open.ReplaceAllString(s, "{\n\tbind = 127.0.0.1\n\tport = "+port+"\n\ttype = UNLISTED\n")

	// Nothing else changed: the same lines, but for those.
	changed := regexp.MustCompile(`^\s*(server|server_args|bind|port|type)\s*=`)
	keep := func(text string) []string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			if !changed.MatchString(l) {
				out = append(out, l)
			}
		}
		return out
	}
	if a, b := keep(orig), keep(s); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Fatalf("substitution changed more than port and paths")
	}
	return s
}

func TestXinetdContribEntry(t *testing.T) {
	s := contrib(t, "xinetd/smtp-bs")
	for _, want := range []string{
		`user\s*=\s*mail`, `group\s*=\s*mail`, `server_args\s*=\s*-config /etc/smtp-bs/smtp-bs.toml`,
		`instances\s*=\s*\d+`, `per_source\s*=\s*\d+`, `cps\s*=\s*\d+ \d+`, `nice\s*=\s*\d+`,
		`log_on_failure\s*=\s*HOST.*`, `flags\s*=\s*NOLIBWRAP`, `wait\s*=\s*no`, `socket_type\s*=\s*stream`,
	} {
		if !regexp.MustCompile(`(?m)^\s*` + want + `\s*$`).MatchString(s) {
			t.Errorf("contrib/xinetd/smtp-bs lacks %s", want)
		}
	}
	// Each attribute has a comment above it (or above its group).
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if !regexp.MustCompile(`^\s+\w+\s*=`).MatchString(l) {
			continue
		}
		j := i - 1
		for j > 0 && regexp.MustCompile(`^\s+\w+\s*=`).MatchString(lines[j]) {
			j--
		}
		if !strings.HasPrefix(strings.TrimSpace(lines[j]), "#") {
			t.Errorf("contrib/xinetd/smtp-bs: %q has no comment saying why", strings.TrimSpace(l))
		}
	}
}

// TestXinetd runs the real xinetd with the contrib entry, sends a message
// through it, checks that the session ran as mail (uid, gid, groups, and
// the nice value the entry asks for) and that the spool holds the message
// as mail's, mode 0600; then runs the cron line as its user and checks
// that qrun delivered it, as mail.
func TestXinetd(t *testing.T) {
	testenv.NeedRoot(t, "xinetd starts the sessions as user mail")
	xinetd := testenv.Need(t, "xinetd")
	m := mail(t)
	sink := testenv.NewSink(t)
	env := testenv.New(t)
	env.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
	env.WriteConfig()

	addr := testenv.FreePort(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(env.Dir, "xinetd.conf")
	if err := os.WriteFile(conf, []byte(xinetdConf(t, port, testenv.Bin(t, "smtp-bs"), env.CfgFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	xlog := filepath.Join(env.Dir, "xinetd.log")
	x := testenv.Start(t, xinetd, "-dontfork", "-filelog", xlog, "-f", conf)
	listening(t, addr)

	d, pid := session(t, addr, x.Process.Pid)
	got, err := procIDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	assertMail(t, "smtp-bs under xinetd", got, m)
	if got.Nice != 10 {
		t.Errorf("session nice = %d, want 10 (the entry's nice)", got.Nice)
	}
	if len(got.Groups) != 0 {
		t.Errorf("groups = no, yet the session has supplementary groups %v", got.Groups)
	}
	// The entry's env reaches the session (one P: bench/README.md).
	if environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil {
		t.Error(err)
	} else if !strings.Contains("\x00"+string(environ), "\x00GOMAXPROCS=1\x00") {
		t.Errorf("the session's environment lacks the entry's GOMAXPROCS=1: %q", environ)
	}
	id := sendAndQuit(t, d, "via xinetd")
	queuedFiles(t, env.SpoolDir, id)
	assertSpoolMail(t, env.SpoolDir, m)

	// xinetd read the entry without a complaint.
	b, _ := os.ReadFile(xlog)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "WARNING") || strings.Contains(l, "bad") {
			t.Errorf("xinetd: %s", l)
		}
	}

	runCronLine(t, env.CfgFile, env.SpoolDir)
	msgs := sink.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: via xinetd") {
		t.Fatalf("sink got %d messages, want the one sent through xinetd", len(msgs))
	}
	if q := env.Queued(); len(q) != 0 {
		t.Errorf("still queued after qrun: %v", q)
	}
	assertSpoolMail(t, env.SpoolDir, m)
}
