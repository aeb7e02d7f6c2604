package submit

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func readDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

func TestParseList(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"root", []string{"root"}},
		{"root (Cron Daemon)", []string{"root"}},
		{"a@x, b@y", []string{"a@x", "b@y"}},
		{"Joe Q. Public <joe@example.org>", []string{"joe@example.org"}},
		{`"Public, Joe" <joe@example.org>, ann@x`, []string{"joe@example.org", "ann@x"}},
		{`"a b"@example.org`, []string{`"a b"@example.org`}},
		{`"a\"b"@example.org`, []string{`"a\"b"@example.org`}},
		{"joe@example.org (Joe (the) Public), x@y", []string{"joe@example.org", "x@y"}},
		{"friends: a@x, b@y;, c@z", []string{"a@x", "b@y", "c@z"}},
		{"undisclosed-recipients:;", nil},
		{"<@relay.example,@b.example:user@c.example>", []string{"user@c.example"}},
		{"user@[IPv6:2001:db8::1]", []string{"user@[IPv6:2001:db8::1]"}},
		{"a@x,\r\n b@y", []string{"a@x", "b@y"}},
		{"  ,, a@x ,", []string{"a@x"}},
		{"jörg@bücher.example", []string{"jörg@bücher.example"}},
		{"=?utf-8?q?J=C3=B6rg?= <j@x>", []string{"j@x"}},
		{"", nil},
	}
	for _, c := range cases {
		got, err := ParseList(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"\"a\r\nb\"@x", "\"a\x00\"@x", `"open`, "a (open", "<open", "a>b", "<a<b>>", "a@[open"} {
		if got, err := ParseList(bad); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}

func TestQualify(t *testing.T) {
	for in, want := range map[string]string{
		"root":             "root@h.example",
		"root@x":           "root@x",
		`"a@b"`:            `"a@b"@h.example`,
		`"a@b"@x`:          `"a@b"@x`,
		"":                 "",
		"MAILER-DAEMON":    "MAILER-DAEMON@h.example",
		"jörg":             "jörg@h.example",
		"user@[192.0.2.1]": "user@[192.0.2.1]",
	} {
		if got := Qualify(in, "h.example"); got != want {
			t.Errorf("Qualify(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatAddress(t *testing.T) {
	for _, c := range [][3]string{
		{"", "a@x", "a@x"},
		{"CronDaemon", "root@h", "CronDaemon <root@h>"},
		{"Joe Q. Public", "j@x", `"Joe Q. Public" <j@x>`},
		{`Say "hi"`, "j@x", `"Say \"hi\"" <j@x>`},
		{"Jörg Müller", "j@x", "=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <j@x>"},
		{"Evil\r\nBcc: x@y", "j@x", `"Evil  Bcc: x@y" <j@x>`},
	} {
		if got := FormatAddress(c[0], c[1]); got != c[2] {
			t.Errorf("FormatAddress(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"root", `"a b"@x, <c@d> (e)`, "g: a@x;", "<@a,@b:c@d>", "a@[IPv6:::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, err := ParseList(s)
		if err != nil {
			return
		}
		for _, a := range addrs {
			if a == "" || strings.ContainsAny(a, "\r\n") {
				t.Fatalf("%q gave address %q", s, a)
			}
		}
	})
}
