// Package aliases reads /etc/aliases (the sendmail format) and expands a
// local name into its final targets: mailboxes of local users, addresses
// elsewhere, programs and files.
//
// The format: "name: value, value" lines; a line starting with white space
// continues the one before; "#" starts a comment line. A value is a local
// name, an address, "|program args", "/file", ":include:/path" (a file of
// more values) or a "quoted string" holding any of those. A name written
// "\name" is a mailbox, never expanded again. Names are case-insensitive.
// postmaster and MAILER-DAEMON exist even when the file does not say so.
package aliases

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"smtp-bs/pkg/address"
)

// Limits that keep a hostile or broken file from costing much.
const (
	maxFile    = 4 << 20
	maxDepth   = 16
	maxTargets = 1000
	maxSteps   = 10000 // aliases walked for one name
)

// Kind says what a target is.
type Kind int

// The kinds of target.
const (
	Mailbox Kind = iota // a local user's mailbox; Value is the user name
	Address             // mail for elsewhere; Value is user@domain
	Program             // Value is the command line after "|"
	File                // Value is the absolute path
)

// Target is one final destination of an alias expansion.
type Target struct {
	Kind  Kind
	Value string
}

func (t Target) String() string {
	switch t.Kind {
	case Program:
		return "|" + t.Value
	case Address, File:
		return t.Value
	}
	return t.Value + " (mailbox)"
}

// Table is a parsed aliases file.
type Table struct {
	m map[string][]string
}

// Error is a syntax error with its line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("aliases: %s:%d: %s", e.File, e.Line, e.Msg) }

// Load reads path (a missing file is an empty one) and adds postmaster and
// MAILER-DAEMON pointing at postmaster unless the file defines them.
func Load(path, postmaster string) (*Table, error) {
	f, err := os.Open(path)
	switch {
	case path == "" || errors.Is(err, fs.ErrNotExist):
		return Parse(path, strings.NewReader(""), postmaster)
	case err != nil:
		return nil, fmt.Errorf("aliases: %w", err)
	}
	defer f.Close()
	return Parse(path, io.LimitReader(f, maxFile), postmaster)
}

// Parse reads an aliases file from r (name is for messages).
func Parse(name string, r io.Reader, postmaster string) (*Table, error) {
	t := &Table{m: map[string][]string{}}
	if err := t.parse(name, r); err != nil {
		return nil, err
	}
	for _, n := range []string{"postmaster", "mailer-daemon"} {
		if _, ok := t.m[n]; !ok {
			t.m[n] = []string{postmaster}
		}
	}
	return t, nil
}

func (t *Table) parse(file string, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var cur strings.Builder
	curLine, n := 0, 0
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		defer cur.Reset()
		name, val, ok := strings.Cut(cur.String(), ":")
		name = address.Lower(strings.TrimSpace(name))
		if !ok || name == "" || strings.ContainsAny(name, " \t,\"") {
			return &Error{File: file, Line: curLine, Msg: "want \"name: value, value\""}
		}
		vals, err := split(val)
		if err != nil {
			return &Error{File: file, Line: curLine, Msg: err.Error()}
		}
		if len(vals) == 0 {
			return &Error{File: file, Line: curLine, Msg: "alias " + name + " has no value"}
		}
		t.m[name] = append(t.m[name], vals...)
		return nil
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return err
			}
		case line[0] == ' ' || line[0] == '\t':
			if cur.Len() == 0 {
				return &Error{File: file, Line: n, Msg: "continuation line without an alias before it"}
			}
			cur.WriteString(" " + strings.TrimSpace(line))
		default:
			if err := flush(); err != nil {
				return err
			}
			cur.WriteString(line)
			curLine = n
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("aliases: %s: %w", file, err)
	}
	return flush()
}

// split cuts a value list at commas outside quotes.
func split(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == ',' && !quoted:
			if v := strings.TrimSpace(b.String()); v != "" {
				out = append(out, v)
			}
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if v := strings.TrimSpace(b.String()); v != "" {
		out = append(out, v)
	}
	return out, nil
}

// Exists reports whether name is an alias.
func (t *Table) Exists(name string) bool {
	_, ok := t.m[address.Lower(name)]
	return ok
}

// Expand resolves local name into targets. isLocal says whether a domain
// is delivered on this host, so that user@localdomain is expanded too.
// A name met again inside its own expansion is a mailbox, as in sendmail.
//
// name itself is taken literally: it comes from an envelope address,
// which the client chose, so "|prog", "/file", ":include:" and "\user"
// there are only odd local names (a mailbox nobody has). Programs, files
// and includes are what the aliases file names, never the sender.
func (t *Table) Expand(name string, isLocal func(domain string) bool) ([]Target, error) {
	var out []Target
	seen := map[Target]bool{}
	done := map[string]bool{} // aliases expanded without meeting a loop
	loops, steps := 0, 0
	add := func(tg Target) error {
		if seen[tg] {
			return nil
		}
		if len(out) >= maxTargets {
			return fmt.Errorf("aliases: %s expands to more than %d targets", name, maxTargets)
		}
		seen[tg] = true
		out = append(out, tg)
		return nil
	}
	var walk, walkName func(v string, depth int, chain map[string]bool) error
	walk = func(v string, depth int, chain map[string]bool) error {
		if depth > maxDepth {
			return fmt.Errorf("aliases: %s nests deeper than %d", name, maxDepth)
		}
		switch {
		case strings.HasPrefix(v, "|"):
			return add(Target{Kind: Program, Value: strings.TrimSpace(v[1:])})
		case strings.HasPrefix(v, "/"):
			return add(Target{Kind: File, Value: v})
		case strings.HasPrefix(address.Lower(v), ":include:"):
			vals, err := readInclude(strings.TrimSpace(v[len(":include:"):]))
			if err != nil {
				return err
			}
			for _, iv := range vals {
				if err := walk(iv, depth+1, chain); err != nil {
					return err
				}
			}
			return nil
		case strings.HasPrefix(v, "\\"):
			return add(Target{Kind: Mailbox, Value: address.Lower(v[1:])})
		}
		return walkName(v, depth, chain)
	}
	walkName = func(v string, depth int, chain map[string]bool) error {
		local := v
		if at := strings.LastIndexByte(v, '@'); at >= 0 {
			if !isLocal(v[at+1:]) {
				return add(Target{Kind: Address, Value: v})
			}
			local = v[:at]
		}
		key := address.Lower(local)
		vals, ok := t.m[key]
		if !ok || chain[key] {
			if ok {
				loops++
			}
			return add(Target{Kind: Mailbox, Value: key})
		}
		// An alias whose expansion met no loop gives the same targets on
		// every path to it, and they are in out already: walking it again
		// took time exponential in the depth of an aliases file whose
		// aliases name the next level several times. One that met a loop
		// is walked again (what it gives depends on the path), within a
		// bound on the whole walk.
		if done[key] {
			return nil
		}
		if steps++; steps > maxSteps {
			return fmt.Errorf("aliases: %s expands through more than %d aliases", name, maxSteps)
		}
		before := loops
		next := make(map[string]bool, len(chain)+1)
		for k := range chain {
			next[k] = true
		}
		next[key] = true
		for _, nv := range vals {
			if err := walk(nv, depth+1, next); err != nil {
				return err
			}
		}
		done[key] = loops == before
		return nil
	}
	if err := walkName(name, 0, map[string]bool{}); err != nil {
		return nil, err
	}
	return out, nil
}

// readInclude reads a :include: file: values separated by commas or lines.
func readInclude(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("aliases: :include:%s is not an absolute path", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("aliases: include: %w", err)
	}
	if len(b) > maxFile {
		return nil, fmt.Errorf("aliases: include %s is larger than %d bytes", path, maxFile)
	}
	var out []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		vals, err := split(s)
		if err != nil {
			return nil, fmt.Errorf("aliases: include %s: %w", path, err)
		}
		out = append(out, vals...)
	}
	return out, nil
}
