package spool_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// TestRewrite: a milter's view of the message (Content), then a changed
// copy written under the same queue ID (Rewrite), committed straight into
// hold/ (CommitHeld): the copy is what is queued, and nothing is left in
// tmp/.
func TestRewrite(t *testing.T) {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := sp.New()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(m, "Subject: original\r\n\r\nbody\r\n")
	src, err := m.Content()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := m.Rewrite(); err != nil {
		t.Fatal(err)
	}
	old, _ := io.ReadAll(src)
	if string(old) != "Subject: original\r\n\r\nbody\r\n" {
		t.Errorf("Content after Rewrite reads %q", old)
	}
	io.WriteString(m, "Subject: changed\r\n\r\nbody\r\n")
	env := &spool.Envelope{From: "a@b.example", Rcpts: []string{"c@d.example"}}
	if err := m.CommitHeld(env); err != nil {
		t.Fatal(err)
	}
	if env.ID != m.ID() || env.Size != int64(len("Subject: changed\r\n\r\nbody\r\n")) {
		t.Errorf("envelope %+v", env)
	}
	if _, err := os.Stat(filepath.Join(sp.Dir, "queue", env.ID)); err == nil {
		t.Errorf("held message in queue/")
	}
	_, b := testenv.ReadMessage(t, sp.Dir, env.ID)
	if !strings.Contains(b, "changed") {
		t.Errorf("queued content %q", b)
	}
	if n := ls(t, sp, "tmp"); len(n) != 0 {
		t.Errorf("tmp/ holds %v", n)
	}
	entries, _ := sp.Scan(nil)
	if len(entries) != 1 || !entries[0].Held {
		t.Errorf("scan: %+v", entries)
	}
}
