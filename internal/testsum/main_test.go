package main

import (
	"bytes"
	"strings"
	"testing"
)

// A run with a failure, a skip for a missing tool and a skip for root:
// the failing test's output is shown, the passing one's is not, and the
// last lines count the skips and name the package to install.
func TestSummary(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"quiet line\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestBad","Output":"    a_test.go:9: boom\n"}`,
		`{"Action":"fail","Package":"p/a","Test":"TestBad"}`,
		`{"Action":"fail","Package":"p/a","Elapsed":0.5}`,
		`{"Action":"output","Package":"p/b","Test":"TestTLS","Output":"=== RUN   TestTLS\n"}`,
		`{"Action":"output","Package":"p/b","Test":"TestTLS","Output":"    h.go:3: swaks cannot do TLS (Debian package libnet-ssleay-perl; scripts/deps.sh installs it)\n"}`,
		`{"Action":"output","Package":"p/b","Test":"TestTLS","Output":"--- SKIP: TestTLS (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/b","Test":"TestTLS"}`,
		`{"Action":"output","Package":"p/b","Test":"TestRoot","Output":"    r.go:3: needs root\n"}`,
		`{"Action":"skip","Package":"p/b","Test":"TestRoot"}`,
		`{"Action":"pass","Package":"p/b","Elapsed":1.25}`,
	}, "\n")
	var out bytes.Buffer
	s := &summary{out: &out, output: map[string][]string{}, missing: map[string]int{}}
	if err := s.read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	s.report()
	got := out.String()
	for _, want := range []string{
		"a_test.go:9: boom",
		"ok  \tp/b\t1.250s",
		"make test: 1 package ok, 1 failed, 2 tests skipped",
		"skipped: 1 tests for missing tools; install them with `sudo scripts/deps.sh` (Debian packages: libnet-ssleay-perl)",
		"p/b TestRoot: r.go:3: needs root",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet line") {
		t.Errorf("a passing test's output was shown:\n%s", got)
	}
	if s.fail != 1 || s.ok != 1 {
		t.Errorf("ok %d fail %d", s.ok, s.fail)
	}
}
