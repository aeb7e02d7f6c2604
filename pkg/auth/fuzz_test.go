package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// FuzzParse: no input makes the credentials parser panic, and an error
// never repeats a hash (the file holds secrets).
func FuzzParse(f *testing.F) {
	f.Add("alice:" + refArgon2id + "\n")
	f.Add("# c\r\n\r\nbob:$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\r\n")
	f.Add("a:$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHRzb21lc2FsdA\n")
	f.Add("a:b:c\n:\n")
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Parse("f", strings.NewReader(src))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			if i := strings.Index(src, "$"); i >= 0 && len(src)-i > 20 && strings.Contains(err.Error(), src[i:]) {
				t.Fatalf("error repeats the hash: %v", err)
			}
			return
		}
		for u := range c.users {
			if ValidUser(u) != nil {
				t.Fatalf("invalid user %q accepted", u)
			}
		}
	})
}

// FuzzSASL drives PLAIN and LOGIN with arbitrary responses: the checker
// sees only bounded, well-formed fields, and success comes only from the
// checker.
func FuzzSASL(f *testing.F) {
	f.Add(true, []byte("\x00alice\x00pw"), []byte(nil), []byte(nil))
	f.Add(true, []byte(nil), []byte("alice\x00alice\x00pw"), []byte(nil))
	f.Add(false, []byte(nil), []byte("alice"), []byte("pw"))
	f.Add(false, []byte("alice"), []byte("pw"), []byte("extra"))
	f.Add(true, []byte("bob\x00alice\x00pw"), []byte("\x00\x00"), []byte{})
	f.Fuzz(func(t *testing.T, plain bool, r1, r2, r3 []byte) {
		ok := false
		check := func(u, p string) error {
			if u == "" || len(u) > maxField || len(p) > maxField {
				t.Fatalf("checker got user %q (%d bytes), password of %d bytes", u, len(u), len(p))
			}
			if u == "alice" && p == "pw" {
				ok = true
				return nil
			}
			return errors.New("no")
		}
		var s sasl.Server
		if plain {
			s = NewPlainServer(check)
		} else {
			s = NewLoginServer(check)
		}
		for _, r := range [][]byte{r1, r2, r3} {
			ch, done, err := s.Next(r)
			if bytes.Contains(ch, []byte("pw")) {
				t.Fatalf("challenge %q echoes client data", ch)
			}
			if done && (err != nil || !ok) {
				t.Fatalf("done without a successful check (err %v)", err)
			}
			if done || err != nil {
				return
			}
		}
	})
}
