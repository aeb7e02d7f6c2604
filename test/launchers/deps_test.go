package launchers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// scripts/deps.sh, the README's install line, parses and lists every
// package the tests name when a tool is missing, and the Recommends that
// swaks needs for TLS.
func TestDepsListsWhatTestsNeed(t *testing.T) {
	out, err := exec.Command("sh", filepath.Join(testenv.Root(), "scripts", "deps.sh"), "--list").CombinedOutput()
	if err != nil {
		t.Fatalf("deps.sh --list: %v\n%s", err, out)
	}
	have := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		have[p] = true
	}
	// Every package testenv names for a missing tool, so that a tool added
	// to its map without a deps.sh line is caught here.
	want := append([]string{"make", "git", "ca-certificates", "libnet-ssleay-perl", "python3-dkim", "libwrap0-dev"},
		testenv.Packages()...)
	for _, p := range want {
		if !have[p] {
			t.Errorf("scripts/deps.sh does not install %s", p)
		}
	}
	// The README names every package a fresh Debian needs.
	readme, err := os.ReadFile(filepath.Join(testenv.Root(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for p := range have {
		if !strings.Contains(string(readme), "`"+p+"`") {
			t.Errorf("README.md does not name %s, which scripts/deps.sh installs", p)
		}
	}
}
