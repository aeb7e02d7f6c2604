// Package auth checks SMTP AUTH passwords for smtp-bs.
//
// The credentials file holds one "user:hash" line per user; blank lines
// and lines starting with # are ignored. A hash is bcrypt ($2a$, $2b$,
// $2y$) or argon2id in its PHC form ($argon2id$v=19$m=...,t=...,p=...$
// salt$hash), as made by smtp-bs -hash-password. The file is read whole
// when the process starts (one process per connection: an edit is seen
// by the next connection) and any bad line is an error naming its line
// number, never its content: it holds secrets.
//
// Passwords never leave this package: not in errors, not in logs.
package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxFile bounds the credentials file.
const maxFile = 16 << 20

// Credentials are the users of a credentials file.
type Credentials struct {
	users map[string]*hash
	lines map[string]int // each user's line, for errors
	// costliest is the most expensive hash in the file: unknown users get
	// a check of its cost (burn), so timing tells no user names.
	costliest *hash
}

// Error is a bad credentials file; Line is 0 when the whole file is at
// fault.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("credentials %s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("credentials %s: %s", e.Path, e.Msg)
}

// Load reads a credentials file, refusing a hash that costs more than
// limits allow.
func Load(path string, limits Limits) (*Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	defer f.Close()
	c, err := Parse(path, f)
	if err != nil {
		return nil, err
	}
	if err := c.check(path, limits); err != nil {
		return nil, err
	}
	return c, nil
}

// check refuses the first line whose hash costs more than limits allow.
func (c *Credentials) check(path string, limits Limits) error {
	for user, h := range c.users {
		if why := h.within(limits); why != "" {
			return &Error{Path: path, Line: c.lines[user], Msg: fmt.Sprintf("user %q: %s", user, why)}
		}
	}
	return nil
}

// Parse reads credentials from r (named path in errors). It applies no
// cost limits: Load does.
func Parse(path string, r io.Reader) (*Credentials, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxFile+1))
	if err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	if len(src) > maxFile {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("larger than %d bytes", maxFile)}
	}
	c := &Credentials{users: map[string]*hash{}, lines: map[string]int{}}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 4096), maxFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		bad := func(msg string) error { return &Error{Path: path, Line: n, Msg: msg} }
		user, h, ok := strings.Cut(line, ":")
		if !ok {
			return nil, bad(`not "user:hash"`)
		}
		if err := ValidUser(user); err != nil {
			return nil, bad(err.Error())
		}
		if _, dup := c.users[user]; dup {
			return nil, bad(fmt.Sprintf("user %q appears twice", user))
		}
		parsed, err := parseHash(strings.TrimSpace(h))
		if err != nil {
			return nil, bad(fmt.Sprintf("user %q: %v", user, err))
		}
		c.users[user] = parsed
		c.lines[user] = n
		if c.costliest == nil || parsed.weight() > c.costliest.weight() {
			c.costliest = parsed
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{Path: path, Msg: err.Error()}
	}
	return c, nil
}

// ValidUser checks a user name: 1 to 255 bytes of printable UTF-8 without
// white space or colons (an address such as alice@example.org is fine).
func ValidUser(u string) error {
	if u == "" || len(u) > 255 {
		return fmt.Errorf("user name must be 1 to 255 bytes")
	}
	if !utf8.ValidString(u) {
		return fmt.Errorf("user name is not UTF-8")
	}
	for _, r := range u {
		if r == ':' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("user name %q holds a colon, white space or a control character", u)
		}
	}
	return nil
}

// Len is the number of users.
func (c *Credentials) Len() int { return len(c.users) }

// Has reports whether user is in the file.
func (c *Credentials) Has(user string) bool { _, ok := c.users[user]; return ok }

// Verify reports whether password is user's. An unknown user costs a
// check of the file's costliest hash, so that a miss takes as long (and
// as much memory) as a wrong password and does not tell which user names
// exist.
func (c *Credentials) Verify(user, password string) bool {
	h, ok := c.users[user]
	if !ok {
		if c.costliest != nil {
			c.costliest.burn(password)
		}
		return false
	}
	return h.verify(password)
}
