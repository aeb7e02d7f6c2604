package address

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheck: Check never panics; what it accepts is a plain local@domain
// that no MTA downstream can read as a route, and checking it again gives
// the same address.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"user@example.org", "User.Name+tag@Example.ORG", "jürgen@bücher.example", "a@b",
		"user%remote.example@local.example", "remote.example!user@local.example",
		"user@remote.example@local.example", "user@local.example.", "user@[127.0.0.1]",
		"user@[IPv6:::1]", "\"quoted\"@example.org", "postmaster", "@example.org", "user@",
		".user@example.org", "us..er@example.org", "user@exa_mple.org", "user@-example.org",
		"user\x00@example.org", "user\r\n@example.org", "\xff@example.org", strings.Repeat("a", 300) + "@x.org",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Check(s)
		if err != nil {
			if a != (Address{}) {
				t.Fatalf("Check(%q) failed but returned %+v", s, a)
			}
			if e, ok := err.(*Error); ok && (strings.ContainsAny(e.Error(), "\r\n\x00") || !utf8.ValidString(e.Error())) {
				t.Fatalf("error message for %q is not safe to log or echo: %q", s, e.Error())
			}
			return
		}
		out := a.String()
		switch {
		case a.Local == "" || a.Domain == "":
			t.Fatalf("Check(%q) = %+v: empty part", s, a)
		case strings.Count(out, "@") != 1:
			t.Fatalf("Check(%q) = %q: not exactly one @", s, out)
		case strings.ContainsAny(out, "%!\"\\()<>[]:;, \t\r\n\x00"):
			t.Fatalf("Check(%q) = %q: holds a routing or special character", s, out)
		case !utf8.ValidString(out) || len(out) > 256:
			t.Fatalf("Check(%q) = %q: invalid UTF-8 or too long", s, out)
		case strings.HasSuffix(a.Domain, ".") || a.Domain != strings.ToLower(a.Domain):
			t.Fatalf("Check(%q): domain %q not normalised", s, a.Domain)
		case out != s[:strings.LastIndexByte(s, '@')]+"@"+strings.ToLower(s[strings.LastIndexByte(s, '@')+1:]):
			t.Fatalf("Check(%q) = %q: changed more than the domain's case", s, out)
		}
		again, err := Check(out)
		if err != nil || again != a {
			t.Fatalf("Check(%q) = %q, but checking that again gives %+v, %v", s, out, again, err)
		}
	})
}
