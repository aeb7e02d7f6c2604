package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// The sendmail front, as cron runs it against a real smtp-bs: its EHLO
// names the hostname of the config it was given, and the header's
// unqualified addresses get that hostname.
func TestSendmailFrontQualifiesAndGreets(t *testing.T) {
	e := testenv.New(t)
	e.Hostname = "front.example"
	e.Extra["local"] = `domains = ["front.example"]`
	e.WriteConfig()
	addr := e.SocketActivate()
	e.Extra["local"] += fmt.Sprintf("\nsubmit_to = %q", addr)
	e.WriteConfig()

	cmd := exec.Command(testenv.SendmailBin(t), "-C", e.CfgFile, "-v", "-i", "-t")
	cmd.Stdin = strings.NewReader("From: root (Cron Daemon)\nTo: root\nCc: Ann <friend@remote.example>\nSubject: Cron <root@h> true\n\nok\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sendmail: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "EHLO front.example") {
		t.Errorf("EHLO does not use the config's hostname:\n%s", out)
	}
	ids := e.Queued()
	if len(ids) != 1 {
		t.Fatalf("queued %v", ids)
	}
	_, data := e.Message(ids[0])
	for _, want := range []string{"\r\nFrom: root@front.example (Cron Daemon)\r\n", "\r\nTo: root@front.example\r\n", "\r\nCc: Ann <friend@remote.example>\r\n"} {
		if !strings.Contains(data, want) {
			t.Errorf("spooled message lacks %q:\n%s", want, data)
		}
	}
}
