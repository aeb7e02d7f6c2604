package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	fpOnce sync.Once
	fpDir  string
	fpErr  error
)

// FailpointBin returns smtp-bs or qrun built with the "failpoint" tag:
// the real programs, which in addition die by SIGKILL at the spool call
// that SMTPBS_FAILPOINT names (see internal/failpoint). Built once per
// test process.
func FailpointBin(t testing.TB, name string) string {
	t.Helper()
	fpOnce.Do(func() {
		fpDir, fpErr = os.MkdirTemp("", "smtp-bs-fpbin-")
		if fpErr != nil {
			return
		}
		os.Chmod(fpDir, 0o755)
		for _, cmd := range []string{"smtp-bs", "qrun"} {
			c := exec.Command("go", "build", "-tags", "failpoint", "-o", filepath.Join(fpDir, cmd), "./cmd/"+cmd)
			c.Dir = Root()
			c.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := c.CombinedOutput(); err != nil {
				fpErr = fmt.Errorf("go build -tags failpoint %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if fpErr != nil {
		t.Fatal(fpErr)
	}
	return filepath.Join(fpDir, name)
}
