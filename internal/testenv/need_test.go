package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A swaks without its TLS modules (Debian's swaks only recommends
// libnet-ssleay-perl) fails a TLS test under CI=true and skips it
// elsewhere, naming the package either way. A stand-in swaks that answers
// --support as swaks does without Net::SSLeay plays the missing module.
func TestNeedSwaksTLSNamesPackage(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		NeedSwaksTLS(t)
		return
	}
	dir := t.TempDir()
	fake := "#!/bin/sh\necho '=== Basic AUTH supported'\necho '*** TLS not available: requires Net::SSLeay'\n"
	if err := os.WriteFile(filepath.Join(dir, "swaks"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"true", ""} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNeedSwaksTLSNamesPackage$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+ci, "PATH="+dir)
		out, err := cmd.CombinedOutput()
		s := string(out)
		if !strings.Contains(s, "Debian package libnet-ssleay-perl") {
			t.Errorf("CI=%q: the message does not name libnet-ssleay-perl:\n%s", ci, s)
		}
		if ci == "true" && (err == nil || !strings.Contains(s, "--- FAIL")) {
			t.Errorf("CI=true: the test did not fail (%v):\n%s", err, s)
		}
		if ci == "" && (err != nil || !strings.Contains(s, "--- SKIP")) {
			t.Errorf("outside CI: the test was not skipped (%v):\n%s", err, s)
		}
	}
}
