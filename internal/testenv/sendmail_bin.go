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
	sendmailOnce sync.Once
	sendmailPath string
	sendmailErr  error
)

// SendmailBin returns a freshly built cmd/sendmail, built once per test
// process into a directory of its own that every user may enter, and
// mode 0755: tests run it as an unprivileged user too.
func SendmailBin(t testing.TB) string {
	t.Helper()
	sendmailOnce.Do(func() {
		dir, err := os.MkdirTemp("", "smtp-bs-sendmail-")
		if err != nil {
			sendmailErr = err
			return
		}
		os.Chmod(dir, 0o755)
		sendmailPath = filepath.Join(dir, "sendmail")
		c := exec.Command("go", "build", "-o", sendmailPath, "./cmd/sendmail")
		c.Dir = Root()
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			sendmailErr = fmt.Errorf("go build sendmail: %v\n%s", err, out)
			return
		}
		sendmailErr = os.Chmod(sendmailPath, 0o755)
	})
	if sendmailErr != nil {
		t.Fatal(sendmailErr)
	}
	return sendmailPath
}
