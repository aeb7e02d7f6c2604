package launchers

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// There is no systemd as PID 1 here to run the units' sandbox for real, so
// this checks the part of it most likely to break a Go program: every
// system call smtp-bs and qrun make in a real session and a real delivery
// (traced with strace, as the units' user) must pass the unit's
// SystemCallFilter=, and every socket they create must be of a family in
// its RestrictAddressFamilies=.

// tolerated are calls the filter refuses (EPERM, SystemCallErrorNumber=)
// and the program shrugs off.
var tolerated = map[string]string{
	"setrlimit": "the Go runtime raises RLIMIT_NOFILE at start and ignores a refusal",
}

// syscallFilter expands a unit's SystemCallFilter= lines as systemd does:
// the first list allows, each later "~" list removes.
func syscallFilter(t *testing.T, sa, unit string) map[string]bool {
	t.Helper()
	lines := parseUnit(t, contrib(t, "systemd/"+unit))["Service"]["SystemCallFilter"]
	if len(lines) == 0 || strings.HasPrefix(lines[0], "~") {
		t.Fatalf("%s: want an allow-list SystemCallFilter= first", unit)
	}
	cache := map[string][]string{}
	allow := map[string]bool{}
	for i, l := range lines {
		deny := strings.HasPrefix(l, "~")
		if i > 0 && !deny {
			t.Fatalf("%s: a second allow-list SystemCallFilter=%s", unit, l)
		}
		for _, item := range strings.Fields(strings.TrimPrefix(l, "~")) {
			for _, sc := range expandFilter(t, sa, item, cache) {
				allow[sc] = !deny
			}
		}
	}
	return allow
}

func expandFilter(t *testing.T, sa, item string, cache map[string][]string) []string {
	t.Helper()
	if !strings.HasPrefix(item, "@") {
		return []string{item}
	}
	if c, ok := cache[item]; ok {
		return c
	}
	out, code := run(t, nil, sa, "syscall-filter", "--no-pager", item)
	if code != 0 {
		t.Fatalf("systemd-analyze syscall-filter %s: %s", item, out)
	}
	var list []string
	for _, l := range strings.Split(out, "\n")[1:] {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		list = append(list, expandFilter(t, sa, l, cache)...)
	}
	cache[item] = list
	return list
}

var (
	callRe   = regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)`)
	socketRe = regexp.MustCompile(`^\d+\s+socket\((AF_[A-Z0-9]+),`)
)

// traced reads an strace -f log: the system calls made and the socket
// families created.
func traced(t *testing.T, file string) (calls, families map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	calls, families = map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if m := callRe.FindStringSubmatch(l); m != nil {
			calls[m[1]] = true
		}
		if m := socketRe.FindStringSubmatch(l); m != nil {
			families[m[1]] = true
		}
	}
	if !calls["execve"] || len(calls) < 10 {
		t.Fatalf("%s does not look like an strace log:\n%.500s", file, b)
	}
	return calls, families
}

func checkSandbox(t *testing.T, sa, unit, trace string) {
	t.Helper()
	allow := syscallFilter(t, sa, unit)
	if !allow["read"] || !allow["flock"] || allow["setresuid"] || allow["setrlimit"] || allow["chown"] {
		t.Fatalf("%s: the filter as expanded here is not what the unit says", unit)
	}
	calls, families := traced(t, trace)
	var refused []string
	for c := range calls {
		if c == "execve" {
			continue // strace's own exec of the program, before the filter would apply
		}
		if !allow[c] && tolerated[c] == "" {
			refused = append(refused, c)
		}
	}
	sort.Strings(refused)
	if len(refused) > 0 {
		t.Errorf("%s: SystemCallFilter= would refuse %v, which the program made", unit, refused)
	}
	okFam := map[string]bool{}
	for _, l := range parseUnit(t, contrib(t, "systemd/"+unit))["Service"]["RestrictAddressFamilies"] {
		for _, f := range strings.Fields(l) {
			okFam[f] = true
		}
	}
	for f := range families {
		if !okFam[f] {
			t.Errorf("%s: the program created an %s socket; RestrictAddressFamilies= allows %v", unit, f, okFam)
		}
	}
	t.Logf("%s: %d distinct system calls, socket families %v: all allowed", unit, len(calls), keysOf(families))
}

func keysOf(m map[string]bool) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// TestSandboxSyscalls traces a session of smtp-bs and a delivery by qrun
// -once, both as the units' user, and holds what they did to the units'
// filters.
func TestSandboxSyscalls(t *testing.T) {
	testenv.NeedRoot(t, "the traced session and delivery run as the units' user mail")
	sa := testenv.Need(t, "systemd-analyze")
	strace := testenv.Need(t, "strace")
	ssa := testenv.Need(t, "systemd-socket-activate")
	sink := testenv.NewSink(t)
	env := testenv.New(t)
	env.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
	env.WriteConfig()
	traceDir := filepath.Dir(env.LogFile) // mail's

	// The session: strace wraps smtp-bs, so LISTEN_PID could not match;
	// --inetd hands the connection over on stdin and stdout instead.
	argv, user, group := unitExec(t, "smtp-bs@.service", env.CfgFile)
	sessTrace := filepath.Join(traceDir, "smtp-bs.trace")
	addr := testenv.FreePort(t)
	launcher := asUnitUser(t, user, group, append([]string{ssa, "-l", addr, "--accept", "--inetd", strace, "-f", "-q", "-o", sessTrace}, argv...)...)
	testenv.Start(t, launcher[0], launcher[1:]...)
	listening(t, addr)
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO client.test", 250)
	sendAndQuit(t, d, "traced")
	waitFor(t, "the traced session to end", func() bool {
		b, _ := os.ReadFile(sessTrace)
		return strings.Contains(string(b), "+++ exited with")
	})
	checkSandbox(t, sa, "smtp-bs@.service", sessTrace)

	// The delivery, as qrun.service runs it.
	argv, user, group = unitExec(t, "qrun.service", env.CfgFile)
	qTrace := filepath.Join(traceDir, "qrun.trace")
	full := asUnitUser(t, user, group, append([]string{strace, "-f", "-q", "-o", qTrace}, argv...)...)
	if out, code := run(t, nil, full[0], full[1:]...); code != 0 {
		t.Fatalf("traced qrun -once: exit %d\n%s", code, out)
	}
	if len(sink.Messages()) != 1 {
		t.Fatalf("traced qrun delivered %d messages, want 1", len(sink.Messages()))
	}
	checkSandbox(t, sa, "qrun.service", qTrace)
}
