package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// A session over a pipe (local submission) that ends with QUIT logs
// connect and disconnect, and no error: go-smtp logged the read after
// its own Close as one (found by an interop run).
func TestPipeSessionEndsQuietly(t *testing.T) {
	e := testenv.New(t)
	cmd := exec.Command(testenv.Bin(t, "smtp-bs"), "-config", e.CfgFile)
	cmd.Stdin = strings.NewReader("EHLO p\r\nQUIT\r\n")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "221 ") {
		t.Fatalf("smtp-bs: %v\n%s", err, out)
	}
	log := e.Log()
	if !strings.Contains(log, "disconnect peer=local") || strings.Contains(log, ": internal ") || strings.Contains(log, ": error ") {
		t.Errorf("log of a clean pipe session:\n%s", log)
	}
}
