package check

import (
	"strings"
	"testing"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/sandbox"
)

func TestSandboxLevel(t *testing.T) {
	full := sandbox.Level{ABI: 7, FS: true, Net: true, Seccomp: true}
	old := sandbox.Level{ABI: 3, FS: true, Seccomp: true, Missing: []string{"landlock ABI 3: no TCP rules (needs ABI 4)"}}
	for _, c := range []struct {
		name              string
		enabled, required bool
		level             sandbox.Level
		want              string
		exit              int
	}{
		{"full", true, false, full, "ok    sandbox: landlock ABI 7: file system + network; seccomp: on", 0},
		{"old kernel", true, false, old, "note  sandbox: landlock ABI 3: file system only; seccomp: on; not enforced: landlock ABI 3: no TCP rules", 0},
		{"old kernel, required", true, true, old, "FAIL  sandbox: landlock ABI 3: file system only; seccomp: on, but [sandbox] required = true", 78},
		{"off", false, false, full, "note  sandbox: off ([sandbox] enabled = false)", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Sandbox = config.Sandbox{Enabled: c.enabled, Required: c.required}
			au := &auditor{Audit: &Audit{Config: cfg, Sandbox: func() sandbox.Level { return c.level }}, reported: map[string]bool{}}
			au.sandbox()
			got := report(&au.rep)
			if !strings.Contains(got, c.want) {
				t.Errorf("report:\n%s\nwant a line starting %q", got, c.want)
			}
			if e := au.rep.Exit(); e != c.exit {
				t.Errorf("exit %d, want %d", e, c.exit)
			}
		})
	}
}

// The real kernel's level, as -check prints it.
func TestSandboxAvailable(t *testing.T) {
	cfg := config.Default()
	au := &auditor{Audit: &Audit{Config: cfg}, reported: map[string]bool{}}
	au.sandbox()
	got := report(&au.rep)
	if !strings.Contains(got, "sandbox: "+sandbox.Available().String()) {
		t.Errorf("report:\n%s\nwant the level %q", got, sandbox.Available())
	}
}
