package sandbox_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"smtp-bs/internal/testenv"
)

// failpointSendmail builds the sendmail command with the failpoint tag
// (the probe; testenv builds only smtp-bs and qrun that way).
func failpointSendmail(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "sendmail")
	c := exec.Command("go", "build", "-tags", "failpoint", "-o", bin, "./cmd/sendmail")
	c.Dir = testenv.Root()
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags failpoint sendmail: %v\n%s", err, out)
	}
	return bin
}

// TestSendmailConfined: the sendmail command may talk SMTP to submit_to
// and nothing else; reading passwd (after it looked its user up), writing
// outside its temporary directory, connecting elsewhere are refused, an
// exec kills it before it sends anything, and a submission still works.
func TestSendmailConfined(t *testing.T) {
	needSandbox(t)
	sink := testenv.NewSink(t)
	e := testenv.New(t)
	w := newWorld(t, e)
	e.Extra["local"] = fmt.Sprintf("submit_to = %q", sink.Addr)
	e.WriteConfig()
	bin := failpointSendmail(t)
	send := func(subject string) (string, error) {
		c := exec.Command(bin, "-C", e.CfgFile, "-f", "s@client.example", "-i", "rcpt@remote.example")
		c.Env = append(os.Environ(), "SMTPBS_SANDBOX_PROBE_DIR="+w.dir)
		c.Stdin = strings.NewReader("Subject: " + subject + "\n\nbody\n")
		b, err := c.CombinedOutput()
		return string(b), err
	}

	attempts := []string{"read:/etc/passwd", "read:" + w.other, "write:" + filepath.Join(w.outside, "planted"),
		fmt.Sprintf("connect:%d", w.port())}
	out := w.arm(t, attempts...)
	if b, err := send("probed"); err != nil {
		t.Fatalf("sendmail after the probes: %v\n%s", err, b)
	}
	r := results(t, out)
	for _, a := range attempts {
		if r[a] != "EACCES" {
			t.Errorf("%s: %q, want EACCES", a, r[a])
		}
	}

	out = w.arm(t, "exec:/bin/sh")
	b, err := send("never sent")
	ee, ok := err.(*exec.ExitError)
	if !ok || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSYS {
		t.Errorf("sendmail with an exec: %v (%s), want death by SIGSYS", err, b)
	}
	if res, ok := results(t, out)["exec:/bin/sh"]; !ok || res != "" {
		t.Errorf("exec returned %q", res)
	}

	msgs := sink.Messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0].Data), "Subject: probed") {
		t.Errorf("sink got %d messages, want only the probed submission", len(msgs))
	}
	if _, err := os.Stat(filepath.Join(w.outside, "planted")); err == nil {
		t.Error("a file was planted outside")
	}
}
