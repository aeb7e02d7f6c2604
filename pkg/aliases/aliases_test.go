package aliases

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "staff.list")
	os.WriteFile(inc, []byte("# the staff\ncarol, dave@elsewhere.example\n\nerin\n"), 0o644)
	src := `# comment
root: alice
Team: bob,
	` + ":include:" + inc + `
	, frank@remote.example
loop1: loop2
loop2: loop1, gina
self: \self, copy@remote.example
prog: "|/usr/bin/procmail -a x", /var/log/mail.archive
local-addr: harry@mx.example
`
	tbl, err := Parse("aliases", strings.NewReader(src), "root")
	if err != nil {
		t.Fatal(err)
	}
	isLocal := func(d string) bool { return d == "mx.example" }
	cases := map[string][]string{
		"team":       {"bob (mailbox)", "carol (mailbox)", "dave@elsewhere.example", "erin (mailbox)", "frank@remote.example"},
		"TEAM":       {"bob (mailbox)", "carol (mailbox)", "dave@elsewhere.example", "erin (mailbox)", "frank@remote.example"},
		"postmaster": {"alice (mailbox)"}, // default postmaster -> root -> alice
		"loop1":      {"loop1 (mailbox)", "gina (mailbox)"},
		"self":       {"self (mailbox)", "copy@remote.example"},
		"prog":       {"|/usr/bin/procmail -a x", "/var/log/mail.archive"},
		"local-addr": {"harry (mailbox)"},
		"nobody":     {"nobody (mailbox)"},
	}
	for name, want := range cases {
		got, err := tbl.Expand(name, isLocal)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var s []string
		for _, tg := range got {
			s = append(s, tg.String())
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("%s = %v, want %v", name, s, want)
		}
	}
	if !tbl.Exists("MAILER-DAEMON") || !tbl.Exists("team") || tbl.Exists("alice") {
		t.Error("Exists is wrong")
	}
}

func TestParseErrors(t *testing.T) {
	for src, line := range map[string]int{
		"ok: a\nno colon here\n": 2,
		"\tcontinuation first\n": 1,
		"a: \"unterminated\n":    1,
		"empty:\n":               1,
	} {
		_, err := Parse("f", strings.NewReader(src), "root")
		var e *Error
		if !errors.As(err, &e) || e.Line != line {
			t.Errorf("%q: err %v, want line %d", src, err, line)
		}
	}
}

func TestMissingFileHasDefaults(t *testing.T) {
	tbl, err := Load("/nonexistent/aliases", "admin@example.org")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := tbl.Expand("MAILER-DAEMON", func(string) bool { return false })
	if len(got) != 1 || got[0].Value != "admin@example.org" || got[0].Kind != Address {
		t.Errorf("MAILER-DAEMON -> %v", got)
	}
}

func TestIncludeUnreadableIsAnError(t *testing.T) {
	tbl, _ := Parse("f", strings.NewReader("x: :include:/nonexistent/list\n"), "root")
	if _, err := tbl.Expand("x", func(string) bool { return false }); err == nil {
		t.Error("unreadable include must be an error (the delivery is retried), not silence")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("root: alice\nteam: a, b,\n\tc@d.example\nprog: \"|/bin/x y\"\n")
	f.Add("a: b\nb: a\n")
	f.Fuzz(func(t *testing.T, src string) {
		tbl, err := Parse("fuzz", strings.NewReader(src), "root")
		if err != nil {
			return
		}
		for name := range tbl.m {
			tbl.Expand(name, func(d string) bool { return d == "x" })
		}
	})
}
