package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/runner"
	"smtp-bs/pkg/spool"
)

var movedAside, faultsInjected atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	if n := movedAside.Load() + faultsInjected.Load(); n > 0 {
		fmt.Printf("runner: %d damaged files moved aside and %d spool faults injected; every healthy message delivered\n",
			movedAside.Load(), faultsInjected.Load())
	}
	os.Exit(code)
}

// recorder is a Deliverer that records what it is given and accepts it.
type recorder struct {
	mu   sync.Mutex
	got  map[string][]byte // rcpt -> content
	sent []string          // rcpts in order
}

func (r *recorder) Route(string) delivery.Destination { return delivery.Destination{Key: "recorder"} }

func (r *recorder) Deliver(_ context.Context, _ delivery.Destination, env *spool.Envelope, rcpts []int, data io.Reader) []delivery.Result {
	b, _ := io.ReadAll(data)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]byte{}
	}
	var out []delivery.Result
	for _, i := range rcpts {
		r.got[env.Rcpts[i]] = b
		r.sent = append(r.sent, env.Rcpts[i])
		out = append(out, delivery.Result{Rcpt: i, Status: spool.Sent, Reply: "250 ok"})
	}
	return out
}

func newRunner(t *testing.T, d delivery.Deliverer) (*runner.Runner, *spool.Spool, *bytes.Buffer) {
	t.Helper()
	sp, err := spool.Create(t.TempDir(), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hostname = "mx.example"
	var log bytes.Buffer
	return &runner.Runner{Spool: sp, Config: cfg, Deliverer: d, Log: maillog.New("qrun", &log), Jitter: func() float64 { return 0 }}, sp, &log
}

func enqueue(t *testing.T, sp *spool.Spool, rcpt string) *spool.Envelope {
	t.Helper()
	m, err := sp.New()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(m, "Subject: for %s\r\n\r\nbody\r\n", rcpt)
	env := &spool.Envelope{Received: time.Now(), From: "s@example.org", Rcpts: []string{rcpt}, Peer: "127.0.0.1", Helo: "c", Protocol: "ESMTP", Body: "7BIT"}
	if err := m.Commit(env); err != nil {
		t.Fatal(err)
	}
	return env
}

func path(sp *spool.Spool, dir, name string) string { return filepath.Join(sp.Dir, dir, name) }

func rewrite(t *testing.T, p string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if err := os.WriteFile(p, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, fi.ModTime(), fi.ModTime()) // still due
}

// TestDamagedFilesMovedAside: every kind of damage a crash, a disk or a
// careless admin can do to a spool file, in one queue with healthy
// messages between them. Each damaged message goes to corrupt/ (nothing
// deleted) with a log line; every healthy one is delivered.
func TestDamagedFilesMovedAside(t *testing.T) {
	rec := &recorder{}
	r, sp, log := newRunner(t, rec)
	damage := []struct {
		name string
		do   func(env *spool.Envelope)
	}{
		{"envelope truncated", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte { return b[:len(b)/2] })
		}},
		{"envelope cut before its newline", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte { return b[:len(b)-1] })
		}},
		{"envelope empty", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func([]byte) []byte { return nil })
		}},
		{"envelope garbled", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte {
				return bytes.Replace(b, []byte("size "), []byte("s\x00ze "), 1)
			})
		}},
		{"envelope zeroed (ext4 after a crash)", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte { return make([]byte, len(b)) })
		}},
		{"envelope from the future", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte {
				return bytes.Replace(b, []byte("smtp-bs-envelope 2\n"), []byte("smtp-bs-envelope 3\nnewkey x\n"), 1)
			})
		}},
		{"envelope names another ID", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte {
				return bytes.Replace(b, []byte("id "+env.ID), []byte("id 0000000000000000001"), 1)
			})
		}},
		{"envelope without recipients", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte {
				var out []string
				for _, l := range strings.SplitAfter(string(b), "\n") {
					if !strings.HasPrefix(l, "rcpt ") {
						out = append(out, l)
					}
				}
				return []byte(strings.Join(out, ""))
			})
		}},
		{"content shortened", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte { return b[3:] })
		}},
		{"trailer cut", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte { return b[:len(b)-5] })
		}},
		{"trailer offset wrong", func(env *spool.Envelope) {
			rewrite(t, path(sp, "queue", env.ID), func(b []byte) []byte {
				return append(b[:len(b)-6], []byte("00001\n")...)
			})
		}},
		{"state from the future", func(env *spool.Envelope) {
			os.WriteFile(path(sp, "state", env.ID), []byte("smtp-bs-state 9\n1 sent 0 x\n"), 0o600)
		}},
		{"state garbled header", func(env *spool.Envelope) {
			os.WriteFile(path(sp, "state", env.ID), []byte("\x00\x00\x00\x00\n"), 0o600)
		}},
	}
	healthy := map[string]bool{}
	damaged := map[string]string{}
	for i, d := range damage {
		good := enqueue(t, sp, fmt.Sprintf("good%02d@example.net", i))
		healthy[good.Rcpts[0]] = true
		bad := enqueue(t, sp, fmt.Sprintf("bad%02d@example.net", i))
		d.do(bad)
		damaged[bad.ID] = d.name
	}
	good := enqueue(t, sp, "last@example.net")
	healthy[good.Rcpts[0]] = true
	// Foreign things in queue/: a stray file, a directory, a symlink.
	os.WriteFile(path(sp, "queue", "README"), []byte("not mail"), 0o600)
	os.Mkdir(path(sp, "queue", "0000000000000000002"), 0o700)
	os.Symlink("/etc/passwd", path(sp, "queue", "0000000000000000003"))

	st, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for rcpt := range healthy {
		if _, ok := rec.got[rcpt]; !ok {
			t.Errorf("%s not delivered", rcpt)
		}
	}
	for _, rcpt := range rec.sent {
		if strings.HasPrefix(rcpt, "bad") {
			t.Errorf("damaged message for %s was delivered", rcpt)
		}
	}
	movedAside.Add(int64(st.MovedAside))
	if want := len(damage) + 3; st.MovedAside != want {
		t.Errorf("moved aside %d, want %d", st.MovedAside, want)
	}
	aside, _ := os.ReadDir(filepath.Join(sp.Dir, "corrupt"))
	var names []string
	for _, de := range aside {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	all := strings.Join(names, " ")
	for id, what := range damaged {
		if !strings.Contains(all, id+".queue") {
			t.Errorf("%s: queue/%s not in corrupt/ (%v)", what, id, names)
		}
		if !strings.Contains(log.String(), "moved-aside id="+id) {
			t.Errorf("%s: not logged", what)
		}
	}
	for _, n := range []string{"README", "0000000000000000002", "0000000000000000003"} {
		if !strings.Contains(all, n) {
			t.Errorf("foreign %s not moved aside: %v", n, names)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(sp.Dir, "queue")); len(ents) != 0 {
		t.Errorf("queue/ not empty after the pass: %d entries", len(ents))
	}
	// A second pass finds nothing more to do, and still runs.
	if st, err := r.Pass(context.Background()); err != nil || st.MovedAside != 0 || st.Errors != 0 {
		t.Errorf("second pass: %+v %v", st, err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Error("the symlink's target was touched")
	}
}

// TestDamagedStateLinesAreRetried: a state log with damaged lines is
// used as far as it parses; recipients whose outcome is unreadable are
// tried again (a duplicate at worst, never a loss).
func TestDamagedStateLinesAreRetried(t *testing.T) {
	rec := &recorder{}
	r, sp, log := newRunner(t, rec)
	m, _ := sp.New()
	io.WriteString(m, "Subject: x\r\n\r\nx\r\n")
	env := &spool.Envelope{Received: time.Now(), From: "s@example.org", Rcpts: []string{"a@example.net", "b@example.net", "c@example.net"},
		Peer: "127.0.0.1", Helo: "c", Protocol: "ESMTP", Body: "7BIT"}
	if err := m.Commit(env); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path(sp, "state", env.ID), []byte("smtp-bs-state 1\n1763800000 sent 0 250 ok\n17638\x00\x00 sent 1 250\ngarbage\n1763800000 sent 2 250 o"), 0o600)
	if _, err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rec.sent, ","); got != "b@example.net,c@example.net" {
		t.Errorf("delivered %s, want b and c (a was recorded sent)", got)
	}
	if !strings.Contains(log.String(), "state-damaged") {
		t.Error("damaged state lines not logged")
	}
	if ents, _ := os.ReadDir(filepath.Join(sp.Dir, "queue")); len(ents) != 0 {
		t.Error("message not finished")
	}
}

// TestRecordFailureKeepsMessage: when the outcome cannot be written (a
// full or broken disk), the message stays queued and the next pass
// delivers it again: a duplicate, never a loss.
func TestRecordFailureKeepsMessage(t *testing.T) {
	for _, c := range []struct {
		op    string
		errno syscall.Errno
		sends []int // deliveries allowed in all
	}{
		{"write", syscall.ENOSPC, []int{2}},
		{"write", syscall.EIO, []int{2}},
		// The record was written but maybe not synced: it may count.
		{"fsync", syscall.EIO, []int{1, 2}},
	} {
		errno := c.errno
		rec := &recorder{}
		f := testenv.NewFaults()
		sp, err := spool.Create(t.TempDir(), f.Ops())
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.Hostname = "mx.example"
		r := &runner.Runner{Spool: sp, Config: cfg, Deliverer: rec, Log: maillog.Discard(), Jitter: func() float64 { return 0 }}
		env := enqueue(t, sp, "a@example.net")
		f.FailOp(c.op, errno)
		st, _ := r.Pass(context.Background())
		faultsInjected.Add(int64(f.Injected()))
		if st.Errors != 1 {
			t.Errorf("%v: pass stats %+v, want 1 error", errno, st)
		}
		if _, err := os.Stat(path(sp, "queue", env.ID)); err != nil {
			t.Fatalf("%v: message gone after its outcome could not be recorded", errno)
		}
		f.Reset()
		r.Pass(context.Background())
		if n := len(rec.sent); n != c.sends[0] && n != c.sends[len(c.sends)-1] {
			t.Errorf("%s %v: delivered %d times, want %v", c.op, errno, n, c.sends)
		}
		if _, err := os.Stat(path(sp, "queue", env.ID)); err == nil {
			t.Errorf("%v: message still queued after a recorded delivery", errno)
		}
	}
}

// TestBounceQueuedAgainWhileDelivered: after a crash between queueing a
// bounce and recording it, the next pass handles the original and the
// bounce at once: the original queues the bounce again under the same ID
// while the first copy is delivered and removed. Neither order may leave
// a damaged message behind (the crash suite found that Remove could
// delete the new copy's data).
func TestBounceQueuedAgainWhileDelivered(t *testing.T) {
	for i := 0; i < 30; i++ {
		rec := &recorder{}
		r, sp, _ := newRunner(t, rec)
		r.Config.Delivery.MaxConcurrency = 4
		env := enqueue(t, sp, "gone@example.net")
		now := time.Now()
		if err := sp.Append(env.ID, spool.Record{Time: now, Kind: "failed", Rcpt: 0, Detail: "550 no such user"}); err != nil {
			t.Fatal(err)
		}
		b := &spool.Envelope{ID: env.ID + ".b1", Received: now, From: "", Rcpts: []string{env.From}, Peer: "local",
			Helo: "mx.example", Protocol: "local", Body: "8BITMIME"}
		if err := sp.Enqueue(b, []byte("Subject: Undelivered Mail Returned to Sender\r\n\r\nx\r\n")); err != nil {
			t.Fatal(err)
		}
		for pass := 0; pass < 3; pass++ {
			if _, err := r.Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(sp.Dir, "corrupt")); len(ents) != 0 {
			t.Fatalf("round %d: %d files moved to corrupt/", i, len(ents))
		}
		if ents, _ := os.ReadDir(filepath.Join(sp.Dir, "queue")); len(ents) != 0 {
			t.Fatalf("round %d: %d messages left in the queue", i, len(ents))
		}
		if rec.got[env.From] == nil {
			t.Fatalf("round %d: the bounce never reached %s", i, env.From)
		}
	}
}
