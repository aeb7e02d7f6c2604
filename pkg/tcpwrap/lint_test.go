package tcpwrap

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts.allow")
	src := "# a comment\n" +
		"smtp-bs: 192.0.2.0/24\n" + // 2: fine
		"smtp-bs 192.0.2.7\n" + // 3: no ':'
		"smtp-bs: [2001:db8::/32\n" + // 4: unterminated [
		"ALL: [::1]\n" + // 5: fine
		"smtp-bs: a \\\n  b\n" + // 6-7: fine, continued
		"smtp-bs: ]x\n" + // 8: stray ]
		": 192.0.2.9\n" + // 9: empty daemon list
		"sshd: 10.0.0.1" // 10: no newline at the end
	os.WriteFile(p, []byte(src), 0o644)
	probs, err := Lint(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pr := range probs {
		got = append(got, strings.TrimPrefix(pr.String(), dir+"/"))
	}
	want := []string{
		`hosts.allow:3: missing ":" separator: the rule is skipped`,
		`hosts.allow:4: unterminated "[": the rule cannot match as written`,
		`hosts.allow:8: a "]" without its "[": the rule cannot match as written`,
		`hosts.allow:9: empty daemon list: the rule never matches`,
		`hosts.allow:10: missing newline or line too long: libwrap ignores this rule and the rest of the file`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Lint:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if probs, err := Lint(filepath.Join(dir, "missing")); err != nil || len(probs) != 0 {
		t.Errorf("missing file: %v %v", probs, err)
	}
}

// FuzzLint: Lint never panics and reports only lines of the file.
func FuzzLint(f *testing.F) {
	for _, s := range []string{"smtp-bs: ALL\n", "a b\n", "x: [::1\n", "]:\n", "a: b \\\n c\n", "no newline"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := filepath.Join(t.TempDir(), "rules")
		os.WriteFile(p, []byte(s), 0o644)
		probs, err := Lint(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(s, "\n") + 1
		for _, pr := range probs {
			if pr.Line < 1 || pr.Line > lines {
				t.Fatalf("line %d out of 1..%d: %v", pr.Line, lines, pr)
			}
		}
	})
}

// Check reports the malformed rules it read on the way to its verdict,
// and reaches the verdict libwrap would (the rule is skipped).
func TestCheckReportsMalformed(t *testing.T) {
	dir := t.TempDir()
	allow, deny := filepath.Join(dir, "allow"), filepath.Join(dir, "deny")
	os.WriteFile(allow, []byte("smtp-bs 192.0.2.7\nsmtp-bs: [2001:db8::1\n"), 0o644)
	os.WriteFile(deny, []byte("ALL: ALL\n"), 0o644)
	v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.7")}, Options{AllowFile: allow, DenyFile: deny})
	if err != nil {
		t.Fatal(err)
	}
	if v.Allow {
		t.Error("a rule without ':' admitted the client")
	}
	if len(v.Malformed) != 2 || v.Malformed[0].Line != 1 || !strings.Contains(v.Malformed[0].Msg, `missing ":"`) ||
		v.Malformed[1].Line != 2 || !strings.Contains(v.Malformed[1].Msg, `unterminated "["`) {
		t.Errorf("Malformed = %v", v.Malformed)
	}
}
