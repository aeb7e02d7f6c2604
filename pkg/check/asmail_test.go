package check

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// As mail, a spool owned by root is one problem with its fix, not one
// more "run -check as root" line for every directory below it.
func TestCheckAsMailReportsTheCauseOnce(t *testing.T) {
	in := newInstall(t)
	setpriv := testenv.Need(t, "setpriv")
	sh(t, "chown -R root:root "+in.spool)
	bin := testenv.Bin(t, "smtp-bs")
	out, _ := exec.Command(setpriv, "--reuid", "mail", "--regid", "mail", "--clear-groups", bin, "-check", "-config", in.conf).CombinedOutput()
	if !strings.Contains(string(out), "FAIL  "+in.spool+": owned by root:root") {
		t.Fatalf("the spool's owner is not reported:\n%s", out)
	}
	if n := strings.Count(string(out), "run -check as root"); n != 0 {
		t.Errorf("%d \"run -check as root\" lines after the real problem:\n%s", n, out)
	}
}

// A malformed rule in hosts.allow is a config finding with file and line.
func TestCheckLintsAccessFiles(t *testing.T) {
	in := newInstall(t)
	write(t, in.allow, "smtp-bs: 127.0.0.1\nsmtp-bs 192.0.2.1\n", 0o644, "root:root")
	rep := in.audit(t).Run()
	var b strings.Builder
	rep.Write(&b, "test")
	if rep.Exit() != 78 || !strings.Contains(b.String(), fmt.Sprintf("FAIL  %s:2: missing \":\" separator", in.allow)) {
		t.Errorf("exit %d:\n%s", rep.Exit(), b.String())
	}
}
