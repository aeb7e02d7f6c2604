package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// floor-code links what cmd/smtp-bs calls: code.go must import every
// package of ours that cmd/smtp-bs imports (sysexits holds constants
// only), so that a new one is not left out of the comparison.
func TestCodeCoversSmtpBs(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, "../../../cmd/smtp-bs").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var want []string
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "smtp-bs/") && p != "smtp-bs/pkg/sysexits" {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		t.Fatal("go list found no package of ours in cmd/smtp-bs")
	}
	got := fileImports(t, "code.go")
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("code.go does not link %s, which cmd/smtp-bs imports", p)
		}
	}
	// And it still builds: the functions it names exist.
	build := exec.Command("go", "build", "-tags", "floorlibs,floorcode", "-o", t.TempDir()+"/floor-code", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Errorf("go build -tags floorlibs,floorcode: %v\n%s", err, out)
	}
}
