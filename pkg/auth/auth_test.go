package auth

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
)

// Made by the reference implementation (Debian's argon2 package):
// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
const refArgon2id = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"

// TestReferenceCLI checks more parameters against the argon2 program
// when it is installed.
func TestReferenceCLI(t *testing.T) {
	bin, err := exec.LookPath("argon2")
	if err != nil {
		// testenv imports this package, so its Missing cannot be used here.
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and argon2 is not installed (Debian package argon2; scripts/deps.sh installs it)")
		}
		t.Skip("argon2 is not installed (Debian package argon2; scripts/deps.sh installs it)")
	}
	for _, p := range [][]string{{"-t", "1", "-m", "10", "-p", "1", "-l", "16"}, {"-t", "3", "-m", "12", "-p", "2", "-l", "64"}} {
		cmd := exec.Command(bin, append([]string{"saltsaltsalt", "-id", "-e"}, p...)...)
		cmd.Stdin = strings.NewReader("pa:ss wörd")
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		h, err := parseHash(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		if !h.verify("pa:ss wörd") || h.verify("pa:ss word") {
			t.Errorf("%s does not verify as it should", out)
		}
	}
}

func TestReferenceArgon2id(t *testing.T) {
	h, err := parseHash(refArgon2id)
	if err != nil {
		t.Fatal(err)
	}
	if !h.verify("password") || h.verify("Password") {
		t.Error("the reference vector does not verify as it should")
	}
}

func TestHashRoundTrip(t *testing.T) {
	for _, scheme := range []string{Argon2id, Bcrypt} {
		h, err := Hash(scheme, "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		c, err := Parse("t", strings.NewReader("# users\n\nalice:"+h+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", scheme, err)
		}
		if !c.Verify("alice", "correct horse") {
			t.Errorf("%s: right password refused", scheme)
		}
		for _, bad := range [][2]string{{"alice", "correct horsE"}, {"alice", ""}, {"Alice", "correct horse"}, {"bob", "correct horse"}} {
			if c.Verify(bad[0], bad[1]) {
				t.Errorf("%s: %q/%q accepted", scheme, bad[0], bad[1])
			}
		}
	}
	if _, err := Hash("md5", "x"); err == nil {
		t.Error("unknown scheme accepted")
	}
	if _, err := Hash(Bcrypt, strings.Repeat("x", 73)); err == nil {
		t.Error("bcrypt silently truncates past 72 bytes: must refuse")
	}
}

// allocated is what f allocates on the heap, in bytes: a check's memory
// is argon2id's m, allocated once per check.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestUnknownUserCostsTheSame: the check for an unknown user costs what a
// wrong password for a known one costs (its memory, here), whatever the
// file's hashes are, so neither time nor memory tells which users exist.
func TestUnknownUserCostsTheSame(t *testing.T) {
	cheap := "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43)
	bc, _ := Hash(Bcrypt, "x")
	def, _ := Hash(Argon2id, "x")
	for _, h := range []string{cheap, bc, def} {
		c, err := Parse("t", strings.NewReader("alice:"+h+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		known := allocated(func() { c.Verify("alice", "wrong") })
		unknown := allocated(func() { c.Verify("nobody", "wrong") })
		if unknown > known+known/10+64<<10 || unknown < known-known/10 {
			t.Errorf("%.20s: an unknown user allocates %d bytes, a wrong password %d", h, unknown, known)
		}
	}
}

// TestDefaultHashIsAffordable: -hash-password's argon2id fits the default
// cap, and one check allocates no more than 16 MiB (it was 64 MiB with 4
// lanes: 140 MB of RSS per attempt).
func TestDefaultHashIsAffordable(t *testing.T) {
	h, _ := Hash(Argon2id, "pw")
	p := filepath.Join(t.TempDir(), "credentials")
	os.WriteFile(p, []byte("alice:"+h+"\n"), 0o600)
	c, err := Load(p, DefaultLimits)
	if err != nil {
		t.Fatalf("the default hash is above the default cap: %v", err)
	}
	if n := allocated(func() { c.Verify("alice", "wrong") }); n > 16<<20 {
		t.Errorf("one check allocates %d MiB", n>>20)
	}
}

// TestLoadRefusesCostAboveCap: a line costlier than the cap is refused,
// naming its line and the key that sets the cap.
func TestLoadRefusesCostAboveCap(t *testing.T) {
	big := "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43)
	slow := "$argon2id$v=19$m=8192,t=12,p=1$c2FsdHNhbHRzYWx0$" + strings.Repeat("A", 43)
	const bc13 = "$2a$13$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	ok, _ := Hash(Argon2id, "x")
	for _, c := range []struct{ line, key string }{{big, "max_hash_memory_kib"}, {slow, "max_hash_passes"}, {bc13, "max_bcrypt_cost"}} {
		p := filepath.Join(t.TempDir(), "credentials")
		os.WriteFile(p, []byte("alice:"+ok+"\n# next\nbob:"+c.line+"\n"), 0o600)
		_, err := Load(p, DefaultLimits)
		var e *Error
		if !errors.As(err, &e) || e.Line != 3 || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: got %v, want an error on line 3 naming %s", c.key, err, c.key)
		}
	}
}

// BenchmarkVerify measures one check of -hash-password's hashes (the
// figures in README's security section: go test -bench Verify -benchmem).
func BenchmarkVerify(b *testing.B) {
	for _, scheme := range []string{Argon2id, Bcrypt} {
		h, _ := Hash(scheme, "pw")
		c, _ := Parse("t", strings.NewReader("alice:"+h+"\n"))
		b.Run(scheme, func(b *testing.B) {
			for b.Loop() {
				c.Verify("alice", "wrong")
			}
		})
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	const bc = "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	cases := []struct {
		src  string
		line int
		msg  string
	}{
		{"alice\n", 1, `not "user:hash"`},
		{"# c\n:" + bc + "\n", 2, "user name"},
		{"al ice:" + bc + "\n", 1, "white space"},
		{"a:" + bc + "\na:" + bc + "\n", 2, "twice"},
		{"a:plain-text-password\n", 1, "not a bcrypt"},
		{"a:$2a$10$short\n", 1, "malformed bcrypt"},
		{"a:$2a$31$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\n", 1, "cost"},
		{"a:$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 1, "only argon2id"},
		{"a:$argon2id$v=16$m=65536,t=2,p=4$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 1, "version"},
		{"a:$argon2id$v=19$m=99999999,t=2,p=4$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 1, "limits"},
		{"a:$argon2id$v=19$t=2,m=65536,p=4$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 1, "m=<positive"},
		{"a:$argon2id$v=19$m=65536,t=2,p=4$!!$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", 1, "salt"},
		{"a:$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$Q1RG\n", 1, "16 to 128"},
		{"a:$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ\n", 1, "malformed argon2id"},
	}
	for _, c := range cases {
		_, err := Parse("creds", strings.NewReader(c.src))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: want *Error, got %v", c.src, err)
			continue
		}
		if e.Line != c.line || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q: got line %d %q, want line %d containing %q", c.src, e.Line, e.Msg, c.line, c.msg)
		}
	}
}

func TestErrorsHideHashes(t *testing.T) {
	const secret = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$SECRETSECRETSECRET"
	_, err := Parse("creds", strings.NewReader("a:"+secret+"\n"))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v repeats the hash", err)
	}
}

func TestBcryptVariantsAndCRLF(t *testing.T) {
	// The same bcrypt hash under the three prefixes, and a CRLF file.
	const tail = "10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	c, err := Parse("t", strings.NewReader("a:$2a$"+tail+"\r\nb:$2b$"+tail+"\r\nc:$2y$"+tail+"\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 || !c.Has("a") || !c.Has("c") {
		t.Errorf("got %d users", c.Len())
	}
}

// exchange runs a SASL server with responses and returns the last error
// and whether it finished.
func exchange(s sasl.Server, resps ...[]byte) (bool, error) {
	for _, r := range resps {
		_, done, err := s.Next(r)
		if err != nil || done {
			return done, err
		}
	}
	return false, nil
}

func TestPlainAndLogin(t *testing.T) {
	var got [2]string
	check := func(u, p string) error {
		got = [2]string{u, p}
		if u == "alice" && p == "pw" {
			return nil
		}
		return errors.New("bad")
	}
	cases := []struct {
		name  string
		s     sasl.Server
		resps [][]byte
		done  bool
		err   error
	}{
		{"plain ir", NewPlainServer(check), [][]byte{[]byte("\x00alice\x00pw")}, true, nil},
		{"plain asked", NewPlainServer(check), [][]byte{nil, []byte("alice\x00alice\x00pw")}, true, nil},
		{"plain other authzid", NewPlainServer(check), [][]byte{[]byte("bob\x00alice\x00pw")}, false, ErrIdentity},
		{"plain two parts", NewPlainServer(check), [][]byte{[]byte("alice\x00pw")}, false, ErrMalformed},
		{"plain empty user", NewPlainServer(check), [][]byte{[]byte("\x00\x00pw")}, false, ErrMalformed},
		{"plain again", NewPlainServer(check), [][]byte{[]byte("\x00alice\x00x"), []byte("x")}, false, nil},
		{"login", NewLoginServer(check), [][]byte{nil, []byte("alice"), []byte("pw")}, true, nil},
		{"login ir", NewLoginServer(check), [][]byte{[]byte("alice"), []byte("pw")}, true, nil},
		{"login empty user", NewLoginServer(check), [][]byte{nil, []byte("")}, false, ErrMalformed},
		{"login long", NewLoginServer(check), [][]byte{nil, []byte(strings.Repeat("a", 2000))}, false, ErrMalformed},
	}
	for _, c := range cases {
		done, err := exchange(c.s, c.resps...)
		if c.name == "plain again" {
			if err == nil {
				t.Errorf("%s: a wrong password passed", c.name)
			}
			continue
		}
		if done != c.done || err != c.err {
			t.Errorf("%s: done=%v err=%v, want %v %v", c.name, done, err, c.done, c.err)
		}
	}
	if got != [2]string{"alice", "pw"} {
		t.Errorf("checker saw %q", got)
	}
}
