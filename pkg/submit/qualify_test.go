package submit

import (
	"fmt"
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
	want := "From: root@h.example (Cron Daemon)\r\nTo: bob@h.example\r\nSubject: bob\r\nCc: Ann <ann@h.example>,\r\n carl@x.example\r\n\r\nbody\r\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

// A folded To: of many bare names keeps lines RFC 5322 allows: each name
// is qualified, and no line is longer than 998 octets (nor 78 here, as
// every address is short).
func TestQualifyFieldsFolded(t *testing.T) {
	var in strings.Builder
	in.WriteString("To: user000")
	for i := 1; i < 120; i++ {
		in.WriteString(",")
		if i%8 == 0 {
			in.WriteString("\n\t")
		} else {
			in.WriteString(" ")
		}
		fmt.Fprintf(&in, "user%03d", i)
	}
	in.WriteString("\nCc: Ann <ann >, (c) bob (d),\n carl\nSubject: x\n\nbody\n")
	m, err := Read(strings.NewReader(in.String()), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	QualifyFields(m, "a-rather-long-host-name.example")
	var b strings.Builder
	m.WriteTo(&b)
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\r\n"), "\r\n") {
		if len(l) > 78 {
			t.Errorf("line of %d octets: %q", len(l), l)
		}
	}
	to, err := ParseList(m.Get("To")[0])
	if err != nil || len(to) != 120 {
		t.Fatalf("To: %d addresses, %v", len(to), err)
	}
	for i, a := range to {
		if want := fmt.Sprintf("user%03d@a-rather-long-host-name.example", i); a != want {
			t.Errorf("address %d: %q, want %q", i, a, want)
		}
	}
	if want := "Cc: Ann <ann@a-rather-long-host-name.example >,\r\n (c) bob@a-rather-long-host-name.example (d),\r\n carl@a-rather-long-host-name.example\r\n"; !strings.Contains(b.String(), want) {
		t.Errorf("Cc: not qualified in place:\n%s", b.String())
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

// FuzzQualifyFields: a qualified field still reads as a header field
// (each line after the first a continuation) and differs from the input
// only by "@host" and folding whitespace.
func FuzzQualifyFields(f *testing.F) {
	for _, s := range []string{"To: bob,\n ann", "Cc: a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, v, w", "From: (x\n y) z", "To: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z"} {
		f.Add(s)
	}
	strip := func(s string) string {
		return strings.NewReplacer("@h.example", "", "\r\n", "", " ", "", "\t", "").Replace(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Read(strings.NewReader(s+"\n\nbody\n"), ReadOptions{})
		if err != nil {
			return
		}
		before := make([]string, len(m.Header))
		for i, h := range m.Header {
			before[i] = string(h.Raw)
		}
		QualifyFields(m, "h.example")
		for i, h := range m.Header {
			raw := string(h.Raw)
			if strip(raw) != strip(before[i]) {
				t.Fatalf("%q -> %q changed more than @h.example and folding", before[i], raw)
			}
			lines := strings.Split(strings.TrimSuffix(raw, "\r\n"), "\r\n")
			for _, l := range lines[1:] {
				if l == "" || (l[0] != ' ' && l[0] != '\t') {
					t.Fatalf("%q -> %q: line %q is not a continuation", before[i], raw, l)
				}
			}
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
