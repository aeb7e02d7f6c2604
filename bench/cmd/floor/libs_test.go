package main

import (
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"

	"smtp-bs/bench/internal/linked"
)

// floor-libs is "whatever cmd/smtp-bs links": libs.go must blank-import
// exactly the libraries smtp-bs's own packages import, as go list -deps
// shows them, no more and no less.
func TestLibsMatchSmtpBs(t *testing.T) {
	want, err := linked.Libraries("../../..", "./cmd/smtp-bs")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("go list found no libraries in cmd/smtp-bs")
	}
	got := fileImports(t, "libs.go")
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("bench/cmd/floor/libs.go has drifted from what cmd/smtp-bs imports:\nmissing (add a blank import): %s\nextra (remove): %s",
			strings.Join(missing, ", "), strings.Join(extra, ", "))
	}
}

// fileImports lists the packages the Go file name imports.
func fileImports(t *testing.T, name string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	return got
}
