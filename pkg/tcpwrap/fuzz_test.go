package tcpwrap

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzCheck feeds arbitrary rule files through Check: it must not panic,
// must finish, and must return a coherent verdict. "$DIR" in the rules
// names a directory holding a pattern file, so "/path" patterns get
// exercised too.
func FuzzCheck(f *testing.F) {
	for _, tc := range tableCases {
		f.Add(tc.allow, tc.deny, tc.client, tc.user)
	}
	f.Fuzz(func(t *testing.T, allowText, denyText, client, user string) {
		dir := scratchDir(t)
		write := func(name, s string) string {
			p := filepath.Join(dir, name)
			s = strings.ReplaceAll(s, "$DIR", dir)
			if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		allow := write("hosts.allow", allowText)
		deny := write("hosts.deny", denyText)
		write("pat", "192.0.2.1 .example.org $DIR/pat2\n")
		write("pat2", "[2001:db8::]/32 $DIR/pat\n")
		var cl Client
		cl.Addr, _ = netip.ParseAddr(client)
		cl.User = user
		cl.Local = netip.MustParseAddrPort("192.0.2.25:25")
		dns := &fakeDNS{
			ptr: []fakePTR{{netip.MustParseAddr("192.0.2.1"), "mx.example.org"},
				{netip.MustParseAddr("2001:db8::1"), "v6.example.org"}},
			hosts: []fakeHost{{"mx.example.org", "mx.example.org", netip.MustParseAddr("192.0.2.1")}},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := Check(ctx, "smtp-bs", cl, Options{AllowFile: allow, DenyFile: deny, Resolver: dns})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		if v.Reason == "" {
			t.Errorf("empty Reason: %+v", v)
		}
		if !v.Allow && v.Env != nil {
			t.Errorf("denied with Env %v", v.Env)
		}
		if v.File != "" && v.File != allow && v.File != deny {
			t.Errorf("File = %q", v.File)
		}
		if v.Line < 0 {
			t.Errorf("Line = %d", v.Line)
		}
	})
}

// FuzzMatch drives the pattern matchers and the C-library look-alikes
// directly with arbitrary patterns and subjects.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"192.0.2.0/24", "192.0.2.1"}, {"[2001:db8::]/32", "2001:db8::1"}, {"*.example.org", "mx.example.org"},
		{"a**", "a"}, {"0x7f.1", "127.0.0.1"}, {"::ffff:1.2.3.4", "1.2.3.4"}, {"1.2.3.4/4294967320", "1.2.3.4"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tok, subject string) {
		c := newChecker(context.Background(), "smtp-bs", Client{}, Options{Resolver: &fakeDNS{}})
		c.stringMatch(tok, subject)
		if net, mask, ok := splitAt(tok, '/'); ok {
			maskedMatch(net, mask, subject)
		}
		wildcardMatch(subject, tok)
		inetAton(tok, false)
		dotQuadAddr(tok)
		cidrMaskAddr(tok)
		scanNumber(tok, 10, false)
		scanNumber(tok, 8, false)
		strtol(tok, 10)
		isNumericHost(tok)
		getFields(tok)
		splitOption(chopString(tok))
		if a, ok := inetPton6(tok); ok {
			// What we print must read back as the same address.
			b, ok := inetPton6(inetNtop6(a))
			if !ok || a != b {
				t.Errorf("inetNtop6(%q) = %q does not read back", tok, inetNtop6(a))
			}
			if p, err := netip.ParseAddr(tok); err == nil && p.As16() != a {
				t.Errorf("inetPton6(%q) = %v, netip says %v", tok, a, p)
			}
		}
	})
}

// TestFuzzCorpusAgainstLibwrap replays the committed FuzzCheck corpus
// (inputs the fuzzer found interesting) through libwrap too: the verdicts
// must agree. Inputs libwrap cannot safely be given are left out: those
// with command options or "/path" patterns (which may name any file).
func TestFuzzCorpusAgainstLibwrap(t *testing.T) {
	oracleBinary(t)
	corpus := filepath.Join("testdata", "fuzz", "FuzzCheck")
	ents, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	unsafe := regexp.MustCompile(`(?i)spawn|twist|aclexec|banners|(^|[\s,:@])/`)
	base := scratchDir(t)
	var cases []oracleCase
	var ours []Verdict
	var names []string
	for i, e := range ents {
		args, err := readCorpusStrings(filepath.Join(corpus, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if len(args) != 4 || unsafe.MatchString(args[0]+"\n"+args[1]) {
			continue
		}
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		allow := writeFile(t, dir, "allow", args[0])
		deny := writeFile(t, dir, "deny", args[1])
		var cl Client
		cl.Addr, _ = netip.ParseAddr(args[2])
		if cl.Addr.Zone() != "" {
			continue // zone names are not comparable across the two
		}
		cl.User = truncate(args[3], stringLength-1)
		cl.Local = netip.MustParseAddrPort("192.0.2.25:25")
		dns := &fakeDNS{
			ptr: []fakePTR{{netip.MustParseAddr("192.0.2.1"), "mx.example.org"},
				{netip.MustParseAddr("2001:db8::1"), "v6.example.org"}},
			hosts: []fakeHost{{"mx.example.org", "mx.example.org", netip.MustParseAddr("192.0.2.1")}},
		}
		v, err := Check(context.Background(), "smtp-bs", cl, Options{AllowFile: allow, DenyFile: deny, Resolver: dns})
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, v)
		names = append(names, e.Name())
		cases = append(cases, oracleCase{daemon: "smtp-bs", allow: allow, deny: deny, client: cl.Addr,
			local: cl.Local, user: cl.User, dns: dns})
	}
	results := askOracle(t, cases)
	for i, r := range results {
		if r.allow != ours[i].Allow {
			t.Errorf("%s: Allow = %v, libwrap %v (%s)", names[i], ours[i].Allow, r.allow, ours[i].Reason)
		}
	}
	t.Logf("%d fuzz corpus inputs checked against libwrap", len(results))
}

// readCorpusStrings reads the string arguments of a Go fuzz corpus file.
func readCorpusStrings(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n")[1:] {
		if !strings.HasPrefix(l, "string(") {
			continue
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(l, "string("), ")"))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
