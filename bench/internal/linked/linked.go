// Package linked lists the libraries a command of this repository imports
// itself: what the benchmark's floor-libs must link to be "whatever
// cmd/smtp-bs links". Its test keeps bench/cmd/floor/libs.go in step with
// it, and the benchmark's report names floor-libs' libraries from it.
package linked

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// ownPrefixes are the repository's own code; everything else a package
// of ours imports, outside the standard library, is a library
// (third_party/publicsuffix included: it is vendored, not ours).
var ownPrefixes = []string{"smtp-bs/cmd/", "smtp-bs/pkg/", "smtp-bs/internal/"}

func own(path string) bool {
	for _, p := range ownPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Libraries runs go list -deps on pkg (e.g. "./cmd/smtp-bs") in the module
// at dir and returns, sorted, the packages outside the standard library
// and outside the repository's own cmd/, pkg/ and internal/ that any of
// the repository's own packages in that build imports directly. A library
// replaced into third_party (go-smtp) keeps its import path.
func Libraries(dir, pkg string) ([]string, error) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{join .Imports \" \"}}", pkg)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	std := map[string]bool{}
	imports := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("go list -deps %s: unexpected line %q", pkg, line)
		}
		std[f[0]] = f[1] == "true"
		imports[f[0]] = f[2:]
	}
	set := map[string]bool{}
	for p, imps := range imports {
		if !own(p) {
			continue
		}
		for _, i := range imps {
			if !std[i] && !own(i) && i != "C" {
				set[i] = true
			}
		}
	}
	libs := make([]string, 0, len(set))
	for l := range set {
		libs = append(libs, l)
	}
	sort.Strings(libs)
	return libs, nil
}
