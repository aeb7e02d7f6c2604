package address

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	ok := map[string]string{
		"user@example.org":          "user@example.org",
		"User.Name+tag@Example.ORG": "User.Name+tag@example.org",
		"a@b":                       "a@b",
		"jürgen@bücher.example":     "jürgen@bücher.example",
		"o'brien@example.org":       "o'brien@example.org",
		"x=y/z@example.org":         "x=y/z@example.org",
	}
	for in, want := range ok {
		a, err := Check(in)
		if err != nil || a.String() != want {
			t.Errorf("Check(%q) = %v, %v; want %q", in, a, err, want)
		}
	}
	refused := []string{
		"user%remote.example@local.example", // %-hack
		"remote.example!user@local.example", // UUCP path
		"user@remote.example@local.example", // quoted "user@remote" after go-smtp unquoted it
		"user@local.example.",               // trailing dot
		"user@[127.0.0.1]",                  // address literal
		"user@[IPv6:::1]",
		"user", "@example.org", "user@",
		".user@example.org", "user.@example.org", "us..er@example.org",
		"us er@example.org", "user\r@example.org", "user\x00@example.org",
		"user@exa_mple.org", "user@-example.org", "user@example..org",
		"user(comment)@example.org", "user\"@example.org",
		"\xff@example.org",
	}
	for _, in := range refused {
		if a, err := Check(in); err == nil {
			t.Errorf("Check(%q) = %v, want refusal", in, a)
		}
	}
	if _, err := Check(""); err != ErrEmpty {
		t.Errorf("Check(\"\") = %v, want ErrEmpty", err)
	}
}

// Under SMTPUTF8 an address may hold non-ASCII letters, but no Unicode
// control or separator: U+0085 (NEL), U+2028 and U+2029 end lines for
// some readers of logs and headers (found by a red-team run).
func TestUnicodeControlsRefused(t *testing.T) {
	for _, a := range []string{"a\u0085b@example.org", "ab@exa\u0085mple.org", "a\u2028b@example.org", "a\u2029b@example.org",
		"a\u00a0b@example.org", "a\u009bb@example.org",
		"evil\u202egro.elpmaxe@example.org", "a\u200bb@example.org", "\ufeffa@example.org"} {
		if _, err := Check(a); err == nil {
			t.Errorf("Check(%q) accepted it", a)
		}
	}
	if _, err := Check("jürgen@bücher.example"); err != nil {
		t.Errorf("a plain UTF-8 address: %v", err)
	}
}

// SRS, VERP and BATV return addresses have local parts over RFC 5321's
// 64 octets; refusing them refused real mail for good (found by an
// interop run). The path as a whole stays bounded.
func TestLongLocalParts(t *testing.T) {
	srs := "SRS0=abcd=XY=example.net=" + strings.Repeat("v", 70)
	if _, err := Check(srs + "@forwarder.example.com"); err != nil {
		t.Errorf("an SRS address: %v", err)
	}
	if _, err := Check(strings.Repeat("l", 250) + "@example.org"); err == nil {
		t.Error("a path over 256 octets was accepted")
	}
}

func TestLowerIsASCIIOnly(t *testing.T) {
	for in, want := range map[string]string{"ALICE": "alice", "ALİCE": "alİce", "Kelvin\u212a": "kelvin\u212a", "straße": "straße", "": ""} {
		if got := Lower(in); got != want {
			t.Errorf("Lower(%q) = %q, want %q", in, got, want)
		}
		if !EqualFold(Lower(in), in) {
			t.Errorf("EqualFold(Lower(%q), %q) is false: two rules", in, in)
		}
	}
}
