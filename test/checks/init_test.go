package checks

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// TestNoInitCost: the packages the checks bring in cost a connection
// nothing much while the checks are off (one process per connection runs
// every package's init). Memory is measured, not time: GODEBUG=inittrace
// reports both, and bytes do not depend on the machine's load.
func TestNoInitCost(t *testing.T) {
	cmd := exec.Command(testenv.Bin(t, "smtp-bs"), "-version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	seen := 0
	for _, line := range strings.Split(string(out), "\n") {
		// init blitiri.com.ar/go/spf @8.5 ms, 0.002 ms clock, 928 bytes, 23 allocs
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "init" {
			continue
		}
		pkg := f[1]
		if pkg == "net/http" {
			t.Errorf("net/http is linked into smtp-bs (its init runs at every connection): see third_party/publicsuffix/PATCHES")
		}
		// debug/elf brings DWARF, zlib and zstd readers whose init runs at
		// every connection (pkg/sandbox reads PT_INTERP itself, for qrun).
		if pkg == "debug/elf" || pkg == "debug/dwarf" || strings.HasPrefix(pkg, "compress/") || pkg == "internal/zstd" {
			t.Errorf("%s is linked into smtp-bs (its init runs at every connection): see pkg/sandbox/interp.go", pkg)
		}
		if !strings.Contains(pkg, "go/spf") && !strings.Contains(pkg, "go-msgauth") && !strings.Contains(pkg, "publicsuffix") &&
			!strings.HasPrefix(pkg, "smtp-bs/pkg/dnsbl") && !strings.HasPrefix(pkg, "smtp-bs/pkg/mailauth") {
			continue
		}
		seen++
		bytes, _ := strconv.Atoi(f[6])
		if bytes > 8<<10 {
			t.Errorf("%s allocates %d bytes at init (a regexp compiled at init? see third_party/spf/PATCHES)", pkg, bytes)
		}
	}
	if seen == 0 {
		t.Fatalf("no init line of the checks' packages: is GODEBUG=inittrace honoured?\n%s", out)
	}
}
