package aliases

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	staff, nested, missing := filepath.Join(dir, "staff"), filepath.Join(dir, "nested"), filepath.Join(dir, "missing")
	os.WriteFile(staff, []byte("lp, :include:"+nested+"\n"), 0o644)
	os.WriteFile(nested, []byte("daemon\n:include:"+staff+"\n"), 0o644) // a loop: listed once
	src := "team: nobody, :INCLUDE:" + staff + "\nother: :include:" + missing + "\nroot: nobody\n"
	tbl, err := Parse("aliases", strings.NewReader(src), "root")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{missing, nested, staff}
	if got := tbl.Includes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Includes() = %v, want %v", got, want)
	}
}
