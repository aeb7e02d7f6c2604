package man

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
)

// runBin runs a built binary and returns stdout, stderr and the exit code.
func runBin(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

// -h says what the program is, lists every mode and the exit codes, on
// stdout, and exits 0; sendmail --help too.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		bin  string
		args []string
		want []string
	}{
		{testenv.Bin(t, "smtp-bs"), []string{"-h"}, []string{"exactly one SMTP session", "fd 3", "stdin/stdout", "-check", "-tcpwrap-test",
			"-show-config", "-hash-password", "-tls-wrapper", "-version", "exit codes", "75", "77", "78"}},
		{testenv.Bin(t, "smtp-bs"), []string{"-help"}, []string{"exactly one SMTP session"}},
		{testenv.Bin(t, "qrun"), []string{"-h"}, []string{"queue runner", "-once", "-interval", "-list", "-flush", "-hold", "-release",
			"-delete", "-bounce", "-route", "-init", "-check", "-metrics", "-show", "-body", "-shape", "ALL", "exit codes", "65", "74", "75"}},
		{testenv.Bin(t, "smtp-bs"), []string{"-h"}, []string{"-tcpwrap-lint", "74"}},
		{testenv.SendmailBin(t), []string{"--help"}, []string{"local submission", "-t", "-f", "exit codes", "75"}},
		{testenv.SendmailBin(t), []string{"-h"}, []string{"local submission"}},
	} {
		out, errOut, code := runBin(t, tc.bin, tc.args...)
		name := filepath.Base(tc.bin) + " " + strings.Join(tc.args, " ")
		if code != 0 {
			t.Errorf("%s: exit %d, want 0\n%s", name, code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout lacks %q:\n%s", name, w, out)
			}
		}
	}
	// A bad flag is still a usage error, with a pointer to -h.
	if _, errOut, code := runBin(t, testenv.Bin(t, "smtp-bs"), "-nosuchflag"); code != 64 || !strings.Contains(errOut, "-h") {
		t.Errorf("smtp-bs -nosuchflag: exit %d, %q", code, errOut)
	}
	if _, _, code := runBin(t, testenv.Bin(t, "qrun"), "-nosuchflag"); code != 64 {
		t.Errorf("qrun -nosuchflag: exit %d", code)
	}
	// sendmail's -h with a value is the hop count, ignored as before.
	if out, _, code := runBin(t, testenv.SendmailBin(t), "-h", "5", "-bi"); code != 0 || strings.Contains(out, "usage") {
		t.Errorf("sendmail -h 5 -bi: exit %d, %q", code, out)
	}
}

// smtp-bs -show-config prints TOML that loads back to the same
// configuration; =changed only what differs; a misplaced key names its
// table.
func TestShowConfig(t *testing.T) {
	bin := testenv.Bin(t, "smtp-bs")
	cfg := filepath.Join(t.TempDir(), "smtp-bs.toml")
	src := "hostname = \"mx.example.org\"\n[delivery]\nsmarthost = \"[relay.example]:587\"\n[delivery.routes]\n\"example.com\" = \"r.example:25\"\n"
	os.WriteFile(cfg, []byte(src), 0o644)
	all, errOut, code := runBin(t, bin, "-config", cfg, "-show-config")
	if code != 0 {
		t.Fatalf("-show-config: exit %d %s", code, errOut)
	}
	changed, _, code := runBin(t, bin, "-config", cfg, "-show-config=changed")
	if code != 0 {
		t.Fatalf("-show-config=changed: exit %d", code)
	}
	want, _ := config.Parse("want", []byte(src))
	for name, out := range map[string]string{"all": all, "changed": changed} {
		got, err := config.Parse(name, []byte(out))
		if err != nil {
			t.Fatalf("%s does not load back: %v\n%s", name, err, out)
		}
		if got.Hostname != want.Hostname || strings.Join(got.Delivery.Smarthost, ",") != "[relay.example]:587" ||
			got.Delivery.Routes["example.com"] != "r.example:25" || got.SMTP.MaxRecipients != want.SMTP.MaxRecipients {
			t.Errorf("%s loads back differently: %+v", name, got)
		}
	}
	if !strings.Contains(all, "max_recipients = 100") || strings.Contains(changed, "max_recipients") {
		t.Errorf("all should list every key and changed only the changed ones:\n%s\n---\n%s", all, changed)
	}
	os.WriteFile(cfg, []byte("smarthost = \"relay.example:25\"\n"), 0o644)
	_, errOut, code = runBin(t, bin, "-config", cfg, "-show-config")
	if code != 78 || !strings.Contains(errOut, ":1: smarthost: unknown key; smarthost is not a key of the top level: it belongs in [delivery]") {
		t.Errorf("misplaced smarthost: exit %d, %q", code, errOut)
	}
}

// Every flag a binary has (as its -h lists them) is in its man page.
func TestManPagesListEveryFlag(t *testing.T) {
	flagRe := regexp.MustCompile(`(?m)^  -([a-z][a-z-]*)`)
	for _, tc := range []struct{ bin, page string }{{testenv.Bin(t, "smtp-bs"), "smtp-bs.8"}, {testenv.Bin(t, "qrun"), "qrun.8"}} {
		out, _, _ := runBin(t, tc.bin, "-h")
		b, err := os.ReadFile(page(tc.page))
		if err != nil {
			t.Fatal(err)
		}
		man := strings.ReplaceAll(string(b), `\-`, "-")
		flags := flagRe.FindAllStringSubmatch(out, -1)
		if len(flags) < 6 {
			t.Fatalf("%s -h lists only %d flags", tc.bin, len(flags))
		}
		for _, f := range flags {
			if !strings.Contains(man, "-"+f[1]) {
				t.Errorf("%s does not document -%s", tc.page, f[1])
			}
		}
	}
}
