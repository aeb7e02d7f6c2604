package tcpwrap

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingResolver counts lookups and answers none.
type countingResolver struct{ calls atomic.Int32 }

func (r *countingResolver) LookupAddr(context.Context, string) ([]string, error) {
	r.calls.Add(1)
	return nil, errNoSuchHost
}

func (r *countingResolver) LookupHost(context.Context, string) ([]string, error) {
	r.calls.Add(1)
	return nil, errNoSuchHost
}

func writeRules(t *testing.T, allow, deny string) Options {
	t.Helper()
	dir := t.TempDir()
	o := Options{AllowFile: filepath.Join(dir, "allow"), DenyFile: filepath.Join(dir, "deny")}
	for p, s := range map[string]string{o.AllowFile: allow, o.DenyFile: deny} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// A rule set of addresses, networks and prefixes never asks the resolver,
// whatever the client.
func TestNumericRulesNeverLookUp(t *testing.T) {
	o := writeRules(t,
		"smtp-bs: 10.0.0.0/8, 192.168. [2001:db8::]/32 [::1] .5 EXCEPT 10.1.1.1: setenv RELAYCLIENT %a\n",
		"ALL EXCEPT sshd: 172.16.0.0/255.240.0.0 0.0.0.0/0.0.0.0 [fe80::]/10 ALL: severity mail.notice\n")
	for _, addr := range []string{"10.2.3.4", "10.1.1.1", "192.0.2.5", "2001:db8::1", "2001:db9::1", "::1", "::ffff:10.2.3.4"} {
		r := &countingResolver{}
		o.Resolver = r
		v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr(addr)}, o)
		if err != nil {
			t.Fatal(err)
		}
		if n := r.calls.Load(); n != 0 {
			t.Errorf("%s: %d lookups for a numeric rule set (%s)", addr, n, v.Reason)
		}
	}
}

// A name pattern does look the name up, once per check.
func TestNamePatternLooksUpOnce(t *testing.T) {
	o := writeRules(t, "ALL: .example.org mx.example.org KNOWN LOCAL\n", "ALL: PARANOID UNKNOWN\n")
	r := &countingResolver{}
	o.Resolver = r
	v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")}, o)
	if err != nil {
		t.Fatal(err)
	}
	if v.Allow || v.Line != 1 || !strings.HasSuffix(v.File, "deny") {
		t.Errorf("verdict %+v, want denied by deny:1 (UNKNOWN)", v)
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("%d lookups, want 1 reverse lookup", n)
	}
}

// slowResolver never answers before its context ends.
type slowResolver struct{}

func (slowResolver) LookupAddr(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (slowResolver) LookupHost(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// A lookup that does not finish in LookupTimeout has failed: the name is
// unknown, and the check goes on.
func TestLookupTimeout(t *testing.T) {
	o := writeRules(t, "ALL: UNKNOWN: setenv SLOW yes\n", "")
	o.Resolver = slowResolver{}
	o.LookupTimeout = 50 * time.Millisecond
	start := time.Now()
	v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")}, o)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("check took %v", d)
	}
	if !v.Allow || v.Env["SLOW"] != "yes" {
		t.Errorf("verdict %+v, want allowed by the UNKNOWN rule", v)
	}
}

// When the caller's context ends, Check reports it and denies.
func TestCheckCancelled(t *testing.T) {
	o := writeRules(t, "ALL: mx.example.org\n", "")
	o.Resolver = slowResolver{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	v, err := Check(ctx, "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")}, o)
	if !errors.Is(err, context.DeadlineExceeded) || v.Allow {
		t.Errorf("Check = %+v, %v; want a denial and DeadlineExceeded", v, err)
	}
}

func TestDefaultFiles(t *testing.T) {
	if _, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")}, Options{Resolver: &countingResolver{}}); err != nil {
		t.Fatal(err)
	}
	if DefaultAllowFile != "/etc/hosts.allow" || DefaultDenyFile != "/etc/hosts.deny" {
		t.Error("default files changed")
	}
}

// Verdicts say which file and line decided, and why.
func TestVerdictReasons(t *testing.T) {
	o := writeRules(t, "# allow\nsmtp-bs: 192.0.2.1: setenv RELAYCLIENT\nsmtp-bs: 192.0.2.2: spawn /bin/true\n", "\nALL: ALL\n")
	o.Resolver = &countingResolver{}
	for _, tc := range []struct {
		addr   string
		allow  bool
		file   string
		line   int
		reason string
	}{
		{"192.0.2.1", true, o.AllowFile, 2, "allowed by " + o.AllowFile + ":2"},
		{"192.0.2.2", false, o.AllowFile, 3, "option spawn is not executed by smtp-bs; failing closed"},
		{"192.0.2.3", false, o.DenyFile, 2, "denied by " + o.DenyFile + ":2"},
	} {
		v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr(tc.addr)}, o)
		if err != nil {
			t.Fatal(err)
		}
		if v.Allow != tc.allow || v.File != tc.file || v.Line != tc.line || !strings.Contains(v.Reason, tc.reason) {
			t.Errorf("%s: %+v; want allow=%v %s:%d %q", tc.addr, v, tc.allow, tc.file, tc.line, tc.reason)
		}
	}
}

// Huge and hostile files finish, without unbounded memory: lines are read
// into a fixed buffer, pattern-file words are capped, and FIFOs and
// devices are not read.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 5000) + "\n" + strings.Repeat("\x00\n", 1000) + "sshd: ALL\n"
	for i := 0; i < 200; i++ {
		f.WriteString(line)
	}
	f.Close()
	word := filepath.Join(dir, "word")
	os.WriteFile(word, []byte(strings.Repeat("y", 10000)), 0o644)
	for _, tc := range []struct {
		name        string
		allow, deny string
		want        bool
	}{
		{"long lines in deny file", "", big, false},
		{"long lines in allow file", big, "", true},
		{"long pattern-file word", writeFile(t, dir, "a1", "ALL: "+word+"\n"), "", false},
		{"device as rule file", "/dev/zero", "/dev/zero", true},
		{"device as pattern file", writeFile(t, dir, "a2", "ALL: /dev/zero /dev/urandom\n"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			v, err := Check(ctx, "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")},
				Options{AllowFile: tc.allow, DenyFile: tc.deny, Resolver: &countingResolver{}})
			if err != nil {
				t.Fatal(err)
			}
			if v.Allow != tc.want {
				t.Errorf("%+v, want allow=%v", v, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A pattern built to make a backtracking matcher take exponential time
// finishes at once.
func TestWildcardWorstCase(t *testing.T) {
	start := time.Now()
	s := strings.Repeat("a", 127)
	if wildcardMatch(s, strings.Repeat("*a", 60)+"*b") {
		t.Error("matched")
	}
	if !wildcardMatch(s, strings.Repeat("*a", 60)+"*") {
		t.Error("did not match")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}
