package launchers

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// scripts/run-local.sh, the README's run command, checks its address before
// it builds or prints anything: a taken port gets a message that says what
// to do (ADDR=), not "listening" followed by the launcher's EADDRINUSE.
func TestRunLocalAddressTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command(filepath.Join(testenv.Root(), "scripts", "run-local.sh"))
	cmd.Env = append(os.Environ(), "ADDR="+l.Addr().String())
	out, err := cmd.CombinedOutput()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 1 || !strings.Contains(string(out), "already listens on "+l.Addr().String()) ||
		!strings.Contains(string(out), "ADDR=") || strings.Contains(string(out), "listening on") {
		t.Fatalf("run-local.sh with its address taken: exit %d (%v)\n%s", code, err, out)
	}
}
