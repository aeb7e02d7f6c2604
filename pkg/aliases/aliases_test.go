package aliases

import (
	"errors"
	"fmt"
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
cyc: cb, cc
cb: cc
cc: cb
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
		// Each of a loop's members is met again on its own path: both
		// are mailboxes, whichever comes first (a review found the
		// first memo of expanded aliases giving only "cb").
		"cyc":    {"cb (mailbox)", "cc (mailbox)"},
		"nobody": {"nobody (mailbox)"},
		// The name comes from an envelope: never a program, file or
		// include (found by a red-team run: a bounce to <|prog@local>).
		"|/bin/sh":        {"|/bin/sh (mailbox)"},
		"/tmp/x":          {"/tmp/x (mailbox)"},
		":include:" + inc: {strings.ToLower(":include:"+inc) + " (mailbox)"},
		"\\alice":         {"\\alice (mailbox)"},
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

// Every alias is expanded once per call: an aliases file whose aliases
// each name the next level several times took time exponential in its
// depth (found by a red-team run: 17 s at 8 levels of 8).
func TestExpandFanOutIsLinear(t *testing.T) {
	const levels, fan = 10, 4
	var b strings.Builder
	for i := 0; i < levels; i++ {
		b.WriteString(fmt.Sprintf("l%d: ", i))
		for j := 0; j < fan; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(fmt.Sprintf("l%d@mx.example", i+1))
		}
		b.WriteString("\n")
	}
	b.WriteString(fmt.Sprintf("l%d: alice, bob\n", levels))
	tbl, err := Parse("aliases", strings.NewReader(b.String()), "root")
	if err != nil {
		t.Fatal(err)
	}
	visits := 0 // isLocal is asked once per visit of a name with a domain
	got, err := tbl.Expand("l0", func(string) bool { visits++; return true })
	if err != nil || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	if visits > levels*fan {
		t.Errorf("%d visits for %d aliases of %d names each", visits, levels, fan)
	}
}

// TestFoldingIsASCIIOnly: "İNFO" (U+0130) is not "info", though
// strings.ToLower makes it so; "INFO" is.
func TestFoldingIsASCIIOnly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "aliases")
	os.WriteFile(p, []byte("info: nobody\n"), 0o644)
	tbl, err := Load(p, "root")
	if err != nil {
		t.Fatal(err)
	}
	if !tbl.Exists("INFO") || tbl.Exists("İNFO") || tbl.Exists("ınfo") {
		t.Errorf("Exists: INFO %v, İNFO %v, ınfo %v; want true, false, false", tbl.Exists("INFO"), tbl.Exists("İNFO"), tbl.Exists("ınfo"))
	}
	got, err := tbl.Expand("İNFO", func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range got {
		if tg.Value == "nobody" {
			t.Errorf("İNFO expanded the info alias: %v", got)
		}
	}
}
