package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// Malformed rules, which libwrap and smtp-bs skip, are reported with file
// and line by -tcpwrap-lint, -tcpwrap-test and -check, and logged at
// warning level by a session that reads them.
func TestTCPWrapLint(t *testing.T) {
	e := testenv.New(t)
	allow := filepath.Join(e.Dir, "hosts.allow")
	deny := filepath.Join(e.Dir, "hosts.deny")
	os.WriteFile(allow, []byte("smtp-bs 127.0.0.2\nsmtp-bs: [::1\nsmtp-bs: 127.0.0.1\n"), 0o644)
	os.WriteFile(deny, []byte("ALL: ALL\n"), 0o644)
	e.Extra["tcpwrap"] = fmt.Sprintf("enabled = true\nallow_file = %q\ndeny_file = %q", allow, deny)
	e.WriteConfig()
	bin := testenv.Bin(t, "smtp-bs")
	run := func(args ...string) (string, int) {
		out, err := exec.Command(bin, append([]string{"-config", e.CfgFile}, args...)...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	missing := allow + `:1: missing ":" separator`
	bracket := allow + `:2: unterminated "["`
	out, code := run("-tcpwrap-lint")
	if code != 65 || !strings.Contains(out, missing) || !strings.Contains(out, bracket) {
		t.Errorf("-tcpwrap-lint: exit %d, want 65 and both lines\n%s", code, out)
	}
	out, code = run("-tcpwrap-test", "127.0.0.2")
	if code != 77 || !strings.Contains(out, "warning: "+missing) {
		t.Errorf("-tcpwrap-test: exit %d, want 77 (the rule is skipped) and the warning\n%s", code, out)
	}
	out, _ = run("-check")
	if !strings.Contains(out, "FAIL  "+allow+":1: missing") || !strings.Contains(out, "+2 "+allow) {
		t.Errorf("-check does not report the malformed rules with a fix:\n%s", out)
	}
	os.WriteFile(allow, []byte("smtp-bs: 127.0.0.2\n"), 0o644)
	if out, code := run("-tcpwrap-lint"); code != 0 {
		t.Errorf("-tcpwrap-lint on clean files: exit %d\n%s", code, out)
	}

	// A session logs what it skipped, once, at warning level.
	os.WriteFile(allow, []byte("smtp-bs 127.0.0.9\nsmtp-bs: 127.0.0.2\n"), 0o644)
	addr := e.SocketActivate()
	d, code, text := testenv.DialFrom(t, "127.0.0.2", addr)
	if code != 220 {
		t.Fatalf("greeting %q", text)
	}
	d.Cmd("QUIT", 221)
	log := e.Log()
	if n := strings.Count(log, allow+`:1: missing`); n != 1 || !strings.Contains(log, "tcpwrap problem=") {
		t.Errorf("want one warning for the malformed rule, got %d:\n%s", n, log)
	}
}
