package spool_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// TestOneFilePerMessage: a committed message is exactly one file,
// queue/ID, holding the content byte for byte and then the envelope; the
// reader gets both back, and nothing else is left in the spool.
func TestOneFilePerMessage(t *testing.T) {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	// Content that looks like a trailer and an envelope must stay content.
	content := []byte("Subject: tricky\r\n\r\nsmtp-bs-envelope 2\nend\nsmtp-bs-trailer 00000000000000000000\n")
	m, err := sp.New()
	if err != nil {
		t.Fatal(err)
	}
	m.Write(content)
	env := &spool.Envelope{Received: time.Now(), From: "a@b.example", Rcpts: []string{"c@d.example", "e@f.example"}, Body: "7BIT"}
	if err := m.Commit(env); err != nil {
		t.Fatal(err)
	}
	for _, d := range spool.Subdirs() {
		ents, _ := os.ReadDir(filepath.Join(sp.Dir, d))
		want := 0
		if d == "queue" {
			want = 1
		}
		if len(ents) != want {
			t.Errorf("%s/ holds %d files, want %d", d, len(ents), want)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(sp.Dir, "queue", env.ID))
	if !bytes.HasPrefix(raw, content) {
		t.Errorf("queue/%s does not start with the content", env.ID)
	}
	got, err := sp.ReadEnvelope(env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != int64(len(content)) || len(got.Rcpts) != 2 || got.From != env.From {
		t.Errorf("envelope read back as %+v", got)
	}
	d, err := sp.OpenData(got)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d)
	d.Close()
	if !bytes.Equal(b, content) {
		t.Errorf("content read back as %q", b)
	}
	if err := sp.Remove(env.ID); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(sp.Dir, "queue")); len(ents) != 0 {
		t.Errorf("queue/ not empty after Remove")
	}
}

// TestReadsVersion1: a message queued by a version 1 smtp-bs (envelope in
// queue/ID, content in data/ID) is still read, delivered and removed; one
// whose data file is gone or short is damaged, not sent.
func TestReadsVersion1(t *testing.T) {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	const id = "660e11238526f00474a"
	content := "Subject: old\r\n\r\nqueued before the upgrade\r\n"
	write := func(dir, name, s string) {
		if err := os.WriteFile(filepath.Join(sp.Dir, dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	envelope := "smtp-bs-envelope 1\nid " + id + "\nreceived 2026-11-22T17:00:00Z\nfrom <a@b.example>\npeer 127.0.0.1\nhelo c\nprotocol ESMTP\nsize 43\nbody 7BIT\nsmtputf8 0\nrcpt <c@d.example>\nend\n"
	write("queue", id, envelope)
	write("data", id, content)
	env, b := testenv.ReadMessage(t, sp.Dir, id)
	if b != content {
		t.Errorf("content %q", b)
	}
	write("data", id, content[:40])
	if _, err := sp.OpenData(env); !errors.Is(err, spool.ErrCorrupt) {
		t.Errorf("short data file: %v, want ErrCorrupt", err)
	}
	os.Remove(filepath.Join(sp.Dir, "data", id))
	if _, err := sp.OpenData(env); !errors.Is(err, spool.ErrCorrupt) {
		t.Errorf("missing data file: %v, want ErrCorrupt", err)
	}
	write("data", id, content)
	if err := sp.Remove(id); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"queue", "data"} {
		if ents, _ := os.ReadDir(filepath.Join(sp.Dir, dir)); len(ents) != 0 {
			t.Errorf("%s/ not empty after Remove", dir)
		}
	}
}

// TestTrailerStrict: a trailer's offset is 20 decimal digits and nothing
// else, and the envelope it points at is of version 2 or later; anything
// else is damage, not a message.
func TestTrailerStrict(t *testing.T) {
	sp, env := enqueued(t)
	path := filepath.Join(sp.Dir, "queue", env.ID)
	good, _ := os.ReadFile(path)
	if _, err := sp.ReadEnvelope(env.ID); err != nil {
		t.Fatalf("the good file: %v", err)
	}
	for name, bad := range map[string][]byte{
		"signed offset": bytes.Replace(good, []byte("trailer 00000000000000000003"), []byte("trailer +0000000000000000003"), 1),
		"spaced offset": bytes.Replace(good, []byte("trailer 00000000000000000003"), []byte("trailer  0000000000000000003"), 1),
		"version 1":     bytes.Replace(good, []byte("smtp-bs-envelope 2"), []byte("smtp-bs-envelope 1"), 1),
	} {
		os.WriteFile(path, bad, 0o600)
		if _, err := sp.ReadEnvelope(env.ID); !errors.Is(err, spool.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestCleanStaleLinkedTmp: a crash between the commit's link and its
// unlink of tmp/ID leaves a second name for a queued message. CleanStale
// removes it at once, even though its mtime (the next try, shared with
// queue/ID) lies in the future, and the queued message stays whole.
func TestCleanStaleLinkedTmp(t *testing.T) {
	sp, env := enqueued(t)
	queued := filepath.Join(sp.Dir, "queue", env.ID)
	left := filepath.Join(sp.Dir, "tmp", env.ID)
	if err := os.Link(queued, left); err != nil {
		t.Fatal(err)
	}
	if err := sp.SetNextTry(env.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var removed []string
	if err := sp.CleanStale(time.Hour, func(p string) { removed = append(removed, p) }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(left); err == nil || len(removed) != 1 {
		t.Errorf("tmp/%s still there (removed %v)", env.ID, removed)
	}
	if _, err := sp.ReadEnvelope(env.ID); err != nil {
		t.Errorf("the queued message: %v", err)
	}
}

// enqueued is a new spool holding one small message, queued.
func enqueued(t *testing.T) (*spool.Spool, *spool.Envelope) {
	t.Helper()
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	env := &spool.Envelope{ID: "660e11238526f00474a", Received: time.Now(), From: "a@b.example", Rcpts: []string{"c@d.example"}}
	if err := sp.Enqueue(env, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	return sp, env
}
