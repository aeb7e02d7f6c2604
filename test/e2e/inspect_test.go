package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// queueTwo puts two messages into e's spool directly, owned as qrun needs.
func queueTwo(t *testing.T, e *testenv.Env) []string {
	t.Helper()
	sp, err := spool.Open(e.SpoolDir, spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	content := "Subject: inspect me\r\n\r\nsecret body\r\n"
	ids := []string{"0000000000001000001", "0000000000002000001"}
	for i, id := range ids {
		env := &spool.Envelope{ID: id, Received: time.Now().Add(-time.Duration(i) * time.Hour), From: "s@client.example",
			Rcpts: []string{"r@remote.example"}, Peer: "192.0.2.1", Helo: "c.example", Protocol: "ESMTP", Size: int64(len(content)), Body: "7BIT"}
		if err := sp.Enqueue(env, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if testenv.IsRoot() {
		testenv.Chown(t, e.SpoolDir, "mail")
	}
	return ids
}

// qrun -show, -shape, ALL, and exit codes that tell a missing ID (65)
// from a spool that cannot be read (74).
func TestQueueInspection(t *testing.T) {
	e := testenv.New(t)
	ids := queueTwo(t, e)

	out, code := e.Qrun("-show", ids[0])
	if code != 0 || !strings.Contains(out, "from:      <s@client.example>") || !strings.Contains(out, "<r@remote.example>  pending") ||
		!strings.Contains(out, "Subject: inspect me") || strings.Contains(out, "secret body") {
		t.Errorf("qrun -show: exit %d\n%s", code, out)
	}
	if out, code := e.Qrun("-show", ids[0], "-body"); code != 0 || !strings.Contains(out, "secret body") {
		t.Errorf("qrun -show -body: exit %d\n%s", code, out)
	}
	if out, code := e.Qrun("-show", "0000000000009000009"); code != 65 || !strings.Contains(out, "no such message") {
		t.Errorf("qrun -show of a missing ID: exit %d, want 65\n%s", code, out)
	}
	if out, code := e.Qrun("-shape"); code != 0 || !strings.Contains(out, "remote.example") || !strings.Contains(out, "TOTAL") {
		t.Errorf("qrun -shape: exit %d\n%s", code, out)
	}
	if out, code := e.Qrun("-hold", "ALL"); code != 0 || strings.Count(out, ": held") != 2 {
		t.Errorf("qrun -hold ALL: exit %d\n%s", code, out)
	}
	if out, _ := e.Qrun("-list"); strings.Count(out, "(held)") != 2 {
		t.Errorf("after -hold ALL:\n%s", out)
	}
	if out, code := e.Qrun("-release", "ALL"); code != 0 || strings.Count(out, ": released") != 2 {
		t.Errorf("qrun -release ALL: exit %d\n%s", code, out)
	}
	if out, code := e.Qrun("-delete", ids[0], "0000000000009000009"); code != 65 || !strings.Contains(out, ids[0]+": deleted") {
		t.Errorf("qrun -delete with one missing ID: exit %d, want 65\n%s", code, out)
	}
	if out, code := e.Qrun("-bounce", "ALL"); code != 65 {
		t.Errorf("qrun -bounce ALL must not bounce everything: exit %d\n%s", code, out)
	}
	if out, code := e.Qrun("-delete", "ALL"); code != 0 || !strings.Contains(out, ids[1]+": deleted") || len(e.Queued()) != 0 {
		t.Errorf("qrun -delete ALL: exit %d\n%s", code, out)
	}

	// A missing spool: 74, and what to run.
	os.Rename(e.SpoolDir, e.SpoolDir+".gone")
	for _, args := range [][]string{{"-list"}, {"-once"}, {"-show", ids[0]}, {"-delete", ids[0]}} {
		out, code := e.Qrun(args...)
		if code != 74 || !strings.Contains(out, "qrun -init") {
			t.Errorf("qrun %v on a missing spool: exit %d, want 74 and a hint\n%s", args, code, out)
		}
	}
	// An unreadable one: 74 and qrun -check.
	os.Rename(e.SpoolDir+".gone", e.SpoolDir)
	os.Chmod(filepath.Join(e.SpoolDir, "queue"), 0)
	defer os.Chmod(filepath.Join(e.SpoolDir, "queue"), 0o700)
	// (As root qrun drops to mail, who cannot read it either.)
	if out, code := e.Qrun("-list"); code != 74 || !strings.Contains(out, "qrun -check") {
		t.Errorf("qrun -list on an unreadable spool: exit %d, want 74\n%s", code, out)
	}
}

// A metrics file that cannot be written is not a silent success: the
// monitoring reading it would see a stale queue.
func TestMetricsFailureExits(t *testing.T) {
	e := testenv.New(t)
	bad := filepath.Join(e.Dir, "no-such-dir", "smtpbs.prom")
	out, code := e.Qrun("-once", "-metrics", bad)
	if code != 74 || !strings.Contains(out, "metrics") {
		t.Errorf("qrun -once -metrics into a missing directory: exit %d, want 74\n%s", code, out)
	}
	good := filepath.Join(filepath.Dir(e.LogFile), "smtpbs.prom")
	if out, code := e.Qrun("-once", "-metrics", good); code != 0 {
		t.Errorf("qrun -once -metrics: exit %d\n%s", code, out)
	}
}
