package tcpwrap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDifferential generates random rule files, clients and name services
// and compares Check with Debian's libwrap hosts_access() on every one:
// the verdict, and for allowed clients the setenv variables and the
// severity. No disagreement is allowed.
//
// TCPWRAP_DIFF_CASES sets the number of cases (default 5000) and
// TCPWRAP_DIFF_SEED the seed (default fixed), for longer hunts.
func TestDifferential(t *testing.T) {
	oracleBinary(t)
	n := envInt(t, "TCPWRAP_DIFF_CASES", 5000)
	seed := uint64(envInt(t, "TCPWRAP_DIFF_SEED", 20240601))
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	base := scratchDir(t)

	cases := make([]genCase, n)
	ocases := make([]oracleCase, n)
	for i := range cases {
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c := g.newCase(dir)
		cases[i] = c
		ocases[i] = oracleCase{daemon: c.daemon, allow: c.allow, deny: c.deny, client: c.client.Addr,
			port: c.client.Port, local: c.client.Local, user: c.client.User, dns: c.dns, env: envNames}
	}
	results := askOracle(t, ocases)

	disagree := 0
	var allowed, withEnv, byAllow, byDeny, byDefault int
	for i, c := range cases {
		o := Options{AllowFile: c.allow, DenyFile: c.deny, Resolver: c.dns, libwrapLookups: true}
		v, err := Check(context.Background(), c.daemon, c.client, o)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		// Without libwrapLookups some name lookups are skipped; that
		// must never change a verdict.
		o.libwrapLookups = false
		if v2, err := Check(context.Background(), c.daemon, c.client, o); err != nil || v2.Allow != v.Allow || v2.Line != v.Line {
			t.Errorf("case %d: skipping lookups changed the verdict: %+v, was %+v (%v)", i, v2, v, err)
		}
		if v.Allow {
			allowed++
			if len(v.Env) > 0 {
				withEnv++
			}
		}
		switch v.File {
		case "":
			byDefault++
		case c.allow:
			byAllow++
		default:
			byDeny++
		}
		if why := compare(v, results[i], c.mapped); why != "" {
			disagree++
			if disagree <= 10 {
				t.Errorf("case %d (seed %d): %s\n%s", i, seed, why, describe(c, v))
			}
		}
	}
	t.Logf("differential: %d allowed (%d with setenv), %d denied; decided by the allow file %d, the deny file %d, the default %d",
		allowed, withEnv, n-allowed, byAllow, byDeny, byDefault)
	t.Logf("differential: %d cases checked against libwrap, %d disagreements", n, disagree)
	fmt.Printf("tcpwrap differential: %d cases checked against libwrap hosts_access(), %d disagreements\n", n, disagree)
	if disagree > 0 {
		t.Fatalf("%d of %d cases disagree with libwrap", disagree, n)
	}
}

// compare returns "" when our verdict is libwrap's.
func compare(v Verdict, r oracleResult, mapped bool) string {
	if v.Allow != r.allow {
		return fmt.Sprintf("Allow = %v, libwrap %v (%s)", v.Allow, r.allow, v.Reason)
	}
	if mapped {
		// libwrap's %a is "::ffff:a.b.c.d" where ours is "a.b.c.d".
		return ""
	}
	wantSev := r.denySeverity
	defSev := 4 // LOG_WARNING, the oracle's deny_severity
	if v.Allow {
		wantSev, defSev = r.allowSeverity, 6
	}
	gotSev := defSev
	if v.Severity != "" {
		gotSev = v.severity
	}
	if gotSev != wantSev {
		return fmt.Sprintf("severity %d (%q), libwrap %d", gotSev, v.Severity, wantSev)
	}
	if !v.Allow {
		return ""
	}
	for _, name := range envNames {
		got, gok := v.Env[name]
		want, wok := r.env[name]
		if gok != wok || got != want {
			return fmt.Sprintf("env %s = %q (set %v), libwrap %q (set %v)", name, got, gok, want, wok)
		}
	}
	return ""
}

func describe(c genCase, v Verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "daemon %q client %v (mapped %v) local %v user %q\n", c.daemon, c.client.Addr, c.mapped, c.client.Local, c.client.User)
	fmt.Fprintf(&b, "dns ptr %v hosts %v\n", c.dns.ptr, c.dns.hosts)
	fmt.Fprintf(&b, "ours: %+v\n", v)
	for _, p := range []string{c.allow, c.deny} {
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", filepath.Base(p), err)
			continue
		}
		fmt.Fprintf(&b, "%s:\n%q\n", filepath.Base(p), data)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(c.allow), "pat*"))
	for _, p := range files {
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s: %q\n", filepath.Base(p), data)
	}
	return b.String()
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative number", name, s)
	}
	return n
}
