package maillog

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With neither syslog nor the journal, "auto" logs to stderr (a pipe
// here) and says so once, rather than logging nowhere.
func TestAutoFallsBackToStderr(t *testing.T) {
	if StderrInteractive() {
		t.Skip("stderr is a terminal or file: auto picks it before the daemons")
	}
	if !StderrSafe() {
		t.Skip("stderr is a socket: nothing may be written there")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = saved }()
	dir := t.TempDir()
	t.Setenv("JOURNAL_STREAM", "")
	l, err := open("auto", "qrun", daemons{journal: filepath.Join(dir, "journal"), syslog: []string{filepath.Join(dir, "log")}})
	if err != nil {
		t.Fatal(err)
	}
	l.Event(Info, "pass", "due", 1)
	l.Event(Info, "pass", "due", 2)
	w.Close()
	b, _ := io.ReadAll(r)
	out := string(b)
	if strings.Count(out, "logging to stderr") != 1 || !strings.Contains(out, "pass due=1") || !strings.Contains(out, "pass due=2") {
		t.Errorf("stderr:\n%s", out)
	}
}
