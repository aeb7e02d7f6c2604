package tcpwrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Problem is one malformed rule in a rule file, as tcpdchk reports it:
// libwrap (and Check) skip such a rule silently, so the admin's intent is
// lost without a word.
type Problem struct {
	File string
	Line int // first physical line of the rule
	Msg  string
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Lint reads a rule file the way Check does and reports the rules it
// would skip or misread: no ':' between the daemon and client lists, an
// unterminated or stray bracket, and a last line without its newline (or
// a rule too long), after which libwrap ignores the rest of the file. A
// missing file has no problems.
func Lint(path string) ([]Problem, error) {
	f, err := openRules(path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, errNotRegular) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out []Problem
	r := newLineReader(f)
	for {
		line, first, ok := r.xgets(context.Background())
		if !ok {
			return out, nil
		}
		bad := func(format string, a ...any) {
			out = append(out, Problem{File: path, Line: first, Msg: fmt.Sprintf(format, a...)})
		}
		if line == "" || line[len(line)-1] != '\n' {
			bad("missing newline or line too long: libwrap ignores this rule and the rest of the file")
			return out, nil
		}
		if line[0] == '#' || strspn(line, " \t\r\n") == len(line) {
			continue
		}
		if msg := brackets(line); msg != "" {
			bad("%s: the rule cannot match as written", msg)
			continue
		}
		svList, rest, ok := splitAt(line, ':')
		if !ok {
			bad(`missing ":" separator: the rule is skipped`)
			continue
		}
		clList, _, _ := splitAt(rest, ':')
		if strings.Trim(svList, " \t") == "" {
			bad("empty daemon list: the rule never matches")
		}
		if strings.Trim(clList, " \t\r\n") == "" {
			bad("empty client list: the rule never matches")
		}
	}
}

// brackets reports an unterminated '[' or a stray ']' in line: either
// makes libwrap's bracket-aware split miss the ':' separators.
func brackets(line string) string {
	depth := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth < 0 {
				return `a "]" without its "["`
			}
		}
	}
	if depth > 0 {
		return `unterminated "["`
	}
	return ""
}
