// Command testsum reads `go test -json` on stdin and prints what plain
// `go test` prints (a line per package, the output of what failed), then
// one line that counts the skipped tests and names what to install to run
// them. `make test` pipes the suite through it, so that a run on a machine
// without the test tools cannot look green while tests skip silently.
//
// It exits 1 when a package failed or when no package reported at all.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action      string
	Package     string
	ImportPath  string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

// The skip messages of internal/testenv name their package this way.
var debPackage = regexp.MustCompile(`Debian package ([^;)]+)`)

type summary struct {
	out      io.Writer
	output   map[string][]string // package + "\x00" + test -> its lines
	skipped  []string            // "pkg Test: reason"
	missing  map[string]int      // Debian package -> tests skipped for it
	other    int                 // skipped for other reasons (root, ...)
	ok, fail int
}

func main() {
	s := &summary{out: os.Stdout, output: map[string][]string{}, missing: map[string]int{}}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(1)
	}
	s.report()
	if s.fail > 0 || s.ok == 0 {
		os.Exit(1)
	}
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event (go vet or a build error printed as text): pass it on.
			fmt.Fprintln(s.out, string(line))
			continue
		}
		s.event(e)
	}
	return sc.Err()
}

func (s *summary) event(e event) {
	key := e.Package + "\x00" + e.Test
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
	case "output":
		s.output[key] = append(s.output[key], e.Output)
	case "fail":
		if e.Test != "" {
			fmt.Fprint(s.out, strings.Join(s.output[key], ""))
			break
		}
		s.fail++
		// The package's own lines: a panic, a timeout, TestMain's output.
		for _, l := range s.output[key] {
			if !strings.HasPrefix(l, "=== ") {
				fmt.Fprint(s.out, l)
			}
		}
		if e.FailedBuild != "" {
			fmt.Fprintf(s.out, "FAIL\t%s [build failed]\n", e.Package)
		}
		s.forget(e.Package)
	case "pass":
		if e.Test == "" {
			s.ok++
			fmt.Fprintf(s.out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
			s.forget(e.Package)
		}
	case "skip":
		if e.Test == "" {
			s.forget(e.Package) // no test files
			break
		}
		reason := skipReason(s.output[key])
		s.skipped = append(s.skipped, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
		if m := debPackage.FindStringSubmatch(reason); m != nil {
			s.missing[strings.TrimSpace(m[1])]++
		} else {
			s.other++
		}
	}
}

// forget drops a finished package's buffered output.
func (s *summary) forget(pkg string) {
	for k := range s.output {
		if strings.HasPrefix(k, pkg+"\x00") {
			delete(s.output, k)
		}
	}
}

// skipReason is the message a test gave to t.Skip: its output minus the
// RUN and SKIP markers, with the file:line prefix.
func skipReason(lines []string) string {
	var r []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		r = append(r, t)
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return r[len(r)-1]
}

func (s *summary) report() {
	fmt.Fprintf(s.out, "make test: %s ok, %d failed, %s skipped\n", plural(s.ok, "package"), s.fail, plural(len(s.skipped), "test"))
	if len(s.skipped) == 0 {
		return
	}
	if len(s.missing) > 0 {
		var pkgs []string
		n := 0
		for p, c := range s.missing {
			pkgs = append(pkgs, p)
			n += c
		}
		sort.Strings(pkgs)
		fmt.Fprintf(s.out, "skipped: %d tests for missing tools; install them with `sudo scripts/deps.sh` (Debian packages: %s)\n", n, strings.Join(pkgs, ", "))
	}
	if s.other > 0 {
		fmt.Fprintf(s.out, "skipped: %d tests for other reasons (most need root, as CI runs them):\n", s.other)
		for _, l := range s.skipped {
			if !debPackage.MatchString(l) {
				fmt.Fprintln(s.out, "  "+l)
			}
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
