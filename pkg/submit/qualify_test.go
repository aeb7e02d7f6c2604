package submit

import (
	"os"
	"strings"
	"testing"
)

func TestQualifyList(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"root (Cron Daemon)", "root@h.example (Cron Daemon)"},
		{"bob", "bob@h.example"},
		{"bob, ann@x.example", "bob@h.example, ann@x.example"},
		{"Ann <ann>", "Ann <ann@h.example>"},
		{`"Doe, John" <jd>, x@y`, `"Doe, John" <jd@h.example>, x@y`},
		{"ann@x.example (Ann)", "ann@x.example (Ann)"},
		{"(comment) bob (more)", "(comment) bob@h.example (more)"},
		{"John Doe", "John Doe"},                                 // not an address: left alone
		{"undisclosed-recipients:;", "undisclosed-recipients:;"}, // a group
		{"<>", "<>"},
		{`"a b"`, `"a b"`},
		{"Ann <ann", "Ann <ann"},
		{"(unbalanced", "(unbalanced"},
		{"<@route:bob@x>", "<@route:bob@x>"},
	} {
		got, changed := QualifyList(tc.in, "h.example")
		if got != tc.want || changed != (tc.in != tc.want) {
			t.Errorf("QualifyList(%q) = %q, %v; want %q", tc.in, got, changed, tc.want)
		}
	}
}

func TestQualifyFields(t *testing.T) {
	m, err := Read(strings.NewReader("From: root (Cron Daemon)\nTo: bob\nSubject: bob\nCc: Ann <ann>,\n carl@x.example\n\nbody\n"), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	QualifyFields(m, "h.example")
	var b strings.Builder
	m.WriteTo(&b)
	want := "From: root@h.example (Cron Daemon)\r\nTo: bob@h.example\r\nSubject: bob\r\nCc: Ann <ann@h.example>, carl@x.example\r\n\r\nbody\r\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

// FuzzQualifyList: never panics, and a change only ever adds "@host".
func FuzzQualifyList(f *testing.F) {
	for _, s := range []string{"root (Cron Daemon)", "bob, ann", "Ann <ann>", `"x, y" <z>`, "a:;", "(a\\) b", `"\"" c`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, changed := QualifyList(s, "h.example")
		if !changed {
			if got != s {
				t.Fatalf("unchanged but different: %q -> %q", s, got)
			}
			return
		}
		if strings.ReplaceAll(got, "@h.example", "") != strings.ReplaceAll(s, "@h.example", "") {
			t.Fatalf("%q -> %q changed more than adding @h.example", s, got)
		}
	})
}

func TestHeloName(t *testing.T) {
	if got := (Settings{Hostname: "front.example"}).HeloName(); got != "front.example" {
		t.Errorf("HeloName = %q, want the configured hostname", got)
	}
	if h, _ := os.Hostname(); (Settings{}).HeloName() != h {
		t.Errorf("without a config, HeloName = %q, want the system's %q", (Settings{}).HeloName(), h)
	}
}
