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
		failsUnderCI(t, ci, string(out), err, "Debian package libnet-ssleay-perl")
	}
}

// NeedRoot, outside root, fails the test under CI=true and skips it
// elsewhere, saying root is needed and why. As root (as in CI) the child
// runs as nobody, from a copy of this test binary nobody can reach.
func TestNeedRootFailsUnderCI(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		NeedRoot(t, "the probe switches users")
		return
	}
	var prefix []string
	bin := os.Args[0]
	if IsRoot() {
		setpriv := Need(t, "setpriv")
		dir := t.TempDir()
		for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		b, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(dir, "testenv.test")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		prefix = []string{setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}
	}
	for _, ci := range []string{"true", ""} {
		args := append(append([]string{}, prefix...), bin, "-test.run=^TestNeedRootFailsUnderCI$", "-test.v")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = os.TempDir()
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		failsUnderCI(t, ci, string(out), err, "needs root: the probe switches users")
	}
}

// failsUnderCI checks a child test's outcome: failed under CI=true, skipped
// elsewhere, its message saying want either way.
func failsUnderCI(t *testing.T, ci, out string, err error, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Errorf("CI=%q: the message does not say %q:\n%s", ci, want, out)
	}
	if ci == "true" && (err == nil || !strings.Contains(out, "--- FAIL")) {
		t.Errorf("CI=true: the test did not fail (%v):\n%s", err, out)
	}
	if ci == "" && (err != nil || !strings.Contains(out, "--- SKIP")) {
		t.Errorf("outside CI: the test was not skipped (%v):\n%s", err, out)
	}
}
