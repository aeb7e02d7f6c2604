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

func TestTCPWrapAdmitsAndRefuses(t *testing.T) {
	e := testenv.New(t)
	allow := filepath.Join(e.Dir, "hosts.allow")
	deny := filepath.Join(e.Dir, "hosts.deny")
	os.WriteFile(allow, []byte("# mail from these\nsmtp-bs: 127.0.0.2\nsmtp-bs: 127.0.0.4 : setenv RELAYCLIENT\nsshd: ALL\n"), 0o644)
	os.WriteFile(deny, []byte("ALL: ALL\n"), 0o644)
	e.Extra["tcpwrap"] = fmt.Sprintf("enabled = true\nallow_file = %q\ndeny_file = %q", allow, deny)
	e.Extra["smtp"] = "relay_networks = []"
	e.WriteConfig()
	addr := e.SocketActivate()

	d, code, text := testenv.DialFrom(t, "127.0.0.2", addr)
	if code != 220 {
		t.Fatalf("127.0.0.2 (allowed): %q", text)
	}
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<b@remote.example>", 554) // admitted, but not a relay client
	d.Cmd("QUIT", 221)

	d, code, text = testenv.DialFrom(t, "127.0.0.3", addr)
	if code != 554 || !strings.Contains(text, "5.7.1") {
		t.Fatalf("127.0.0.3 (denied): greeting %q, want 554 5.7.1", text)
	}
	d.Cmd("EHLO c.test", 503)
	d.Cmd("MAIL FROM:<a@client.example>", 503)
	d.Cmd("QUIT", 221)

	d, code, text = testenv.DialFrom(t, "127.0.0.4", addr)
	if code != 220 {
		t.Fatalf("127.0.0.4 (allowed with RELAYCLIENT): %q", text)
	}
	d.Cmd("EHLO c.test", 250)
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<b@remote.example>", 250) // setenv RELAYCLIENT grants relaying
	d.Cmd("QUIT", 221)

	log := e.Log()
	if !strings.Contains(log, "stage=tcpwrap") || !strings.Contains(log, deny+":1") {
		t.Errorf("the refusal is not logged with its rule file and line:\n%s", log)
	}

	// -tcpwrap-test answers without a connection, like tcpdmatch.
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"127.0.0.2"}, 0, allow + ":2"},
		{[]string{"127.0.0.3"}, 77, deny + ":1"},
		{[]string{"127.0.0.4", "relay.example"}, 0, "RELAYCLIENT"},
	}
	for _, c := range cases {
		cmd := exec.Command(testenv.Bin(t, "smtp-bs"), append([]string{"-config", e.CfgFile, "-tcpwrap-test"}, c.args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("-tcpwrap-test %v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, out)
		}
	}
}
