package spool_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

var faults atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	if n := faults.Load(); n > 0 {
		fmt.Printf("spool: %d faults exercised, none left a partial message\n", n)
	}
	os.Exit(code)
}

var errnos = []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS}

func ls(t *testing.T, sp *spool.Spool, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(sp.Dir, dir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func content(n int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: faults\r\n\r\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %06d of a message that takes several buffered writes\r\n", i)
	}
	return b.Bytes()
}

func envelope() *spool.Envelope {
	return &spool.Envelope{Received: time.Now(), From: "a@example.org", Rcpts: []string{"b@example.net", "c@example.net"},
		Peer: "127.0.0.1", Helo: "client.example", Protocol: "ESMTP", Body: "8BITMIME"}
}

// commit writes one message the way smtp-bs does.
func commit(sp *spool.Spool, data []byte) (*spool.Envelope, error) {
	m, err := sp.New()
	if err != nil {
		return nil, err
	}
	if _, err := m.Write(data); err != nil {
		m.Abort()
		return nil, err
	}
	env := envelope()
	if err := m.Commit(env); err != nil {
		return nil, err
	}
	return env, nil
}

// whole checks that every queued message parses and has all its data.
func whole(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	ids := ls(t, sp, "queue")
	for _, id := range ids {
		env, err := sp.ReadEnvelope(id)
		if err != nil {
			t.Fatalf("queue/%s: %v", id, err)
		}
		f, err := sp.OpenData(env)
		if err != nil {
			t.Fatalf("queue/%s: %v", id, err)
		}
		f.Close()
	}
	return ids
}

// TestCommitFaults fails each OS call of a commit in turn: Commit (or
// New, or Write) reports the error, IsNoSpace tells a full disk from a
// broken one, nothing is left in tmp/, data/ or queue/, and the spool
// works again when the disk does.
func TestCommitFaults(t *testing.T) {
	data := content(200 << 10)
	clean := testenv.NewFaults()
	sp, err := spool.Create(t.TempDir(), clean.Ops())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := commit(sp, data); err != nil {
		t.Fatal(err)
	}
	calls := clean.Calls()
	ops := map[string]bool{}
	for _, c := range calls {
		ops[strings.Fields(c)[0]] = true
	}
	for _, op := range []string{"create", "write", "fsync", "link"} {
		if !ops[op] {
			t.Fatalf("a commit makes no %s call through the seams: %v", op, calls)
		}
	}
	for _, errno := range errnos {
		for i := range calls {
			name := fmt.Sprintf("%v at call %d (%s)", errno, i+1, calls[i])
			f := testenv.NewFaults()
			sp, err := spool.Create(t.TempDir(), f.Ops())
			if err != nil {
				t.Fatal(err)
			}
			f.FailCall(i+1, errno)
			_, err = commit(sp, data)
			faults.Add(int64(f.Injected()))
			if err == nil {
				t.Fatalf("%s: commit succeeded", name)
			}
			if !errors.Is(err, errno) {
				t.Errorf("%s: error %v does not wrap the errno", name, err)
			}
			if full := errno == syscall.ENOSPC || errno == syscall.EDQUOT; spool.IsNoSpace(err) != full {
				t.Errorf("%s: IsNoSpace = %v", name, !full)
			}
			for _, d := range []string{"tmp", "data", "queue"} {
				if left := ls(t, sp, d); len(left) != 0 {
					t.Errorf("%s: %s/ holds %v", name, d, left)
				}
			}
			f.Reset()
			if _, err := commit(sp, data); err != nil {
				t.Fatalf("%s: commit after recovery: %v", name, err)
			}
			if ids := whole(t, sp); len(ids) != 1 {
				t.Errorf("%s: %d queued after recovery", name, len(ids))
			}
		}
	}
}

// TestEnqueueFaults: the same for the bounces qrun queues.
func TestEnqueueFaults(t *testing.T) {
	data := content(10 << 10)
	bounce := func() *spool.Envelope {
		return &spool.Envelope{ID: "0123456789abc000001.b1", Received: time.Now(), From: "", Rcpts: []string{"a@example.org"},
			Peer: "local", Helo: "mx.example", Protocol: "local", Body: "8BITMIME"}
	}
	clean := testenv.NewFaults()
	sp, _ := spool.Create(t.TempDir(), clean.Ops())
	if err := sp.Enqueue(bounce(), data); err != nil {
		t.Fatal(err)
	}
	calls := clean.Calls()
	for _, errno := range errnos {
		for i := range calls {
			name := fmt.Sprintf("Enqueue, %v at call %d (%s)", errno, i+1, calls[i])
			f := testenv.NewFaults()
			sp, _ := spool.Create(t.TempDir(), f.Ops())
			f.FailCall(i+1, errno)
			err := sp.Enqueue(bounce(), data)
			faults.Add(int64(f.Injected()))
			if err == nil {
				t.Errorf("%s: Enqueue succeeded", name)
			}
			queued := ls(t, sp, "queue")
			if len(queued) != 0 {
				t.Errorf("%s: failed Enqueue left %v queued", name, queued)
			}
			if left := ls(t, sp, "tmp"); len(left) != 0 {
				t.Errorf("%s: tmp/ holds %v", name, left)
			}
			if len(queued) == 0 {
				if left := ls(t, sp, "data"); len(left) != 0 {
					t.Errorf("%s: data/ holds %v without an envelope", name, left)
				}
			}
			// Retried when the disk is well: queued once, whole.
			f.Reset()
			if err := sp.Enqueue(bounce(), data); err != nil && !errors.Is(err, spool.ErrExists) {
				t.Fatalf("%s: retry: %v", name, err)
			}
			if ids := whole(t, sp); len(ids) != 1 {
				t.Errorf("%s: %d queued after the retry", name, len(ids))
			}
		}
	}
}

// TestAppendFaults: a state record that cannot be written or synced is
// reported, and what a half-written record leaves behind (a crash or a
// full disk can cut a write anywhere) never makes a recipient count as
// done, nor spoils the records written after it.
func TestAppendFaults(t *testing.T) {
	for _, op := range []string{"write", "fsync"} {
		for _, errno := range errnos {
			f := testenv.NewFaults()
			sp, _ := spool.Create(t.TempDir(), f.Ops())
			env, err := commit(sp, content(100))
			if err != nil {
				t.Fatal(err)
			}
			f.FailOp(op, errno)
			err = sp.Append(env.ID, spool.Record{Time: time.Unix(1763800000, 0), Kind: "sent", Rcpt: 1, Detail: "250 ok"})
			faults.Add(int64(f.Injected()))
			if err == nil || !errors.Is(err, errno) {
				t.Fatalf("%s %v: Append returned %v", op, errno, err)
			}
		}
	}
	// A write cut short at every byte of a two-record append.
	recs := []spool.Record{
		{Time: time.Unix(1763800000, 0), Kind: "sent", Rcpt: 1, Detail: "250 ok"},
		{Time: time.Unix(1763800000, 0), Kind: "failed", Rcpt: 0, Detail: "550 no"},
	}
	for cut := 1; ; cut++ {
		var wrote int
		ops := testenv.NewFaults().Ops()
		short := false
		ops.Write = func(fl *os.File, p []byte) (int, error) {
			if !short {
				return fl.Write(p)
			}
			wrote = len(p)
			n, _ := fl.Write(p[:min(cut, len(p))])
			return n, syscall.EIO
		}
		sp, _ := spool.Create(t.TempDir(), ops)
		env, err := commit(sp, content(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Append(env.ID, spool.Record{Time: time.Unix(1763700000, 0), Kind: "deferred", Rcpt: 0, Detail: "451 later"}); err != nil {
			t.Fatal(err)
		}
		short = true
		if err := sp.Append(env.ID, recs...); err == nil {
			t.Fatal("cut write not reported")
		}
		faults.Add(1)
		short = false
		if err := sp.Append(env.ID, spool.Record{Time: time.Unix(1763900000, 0), Kind: "sent", Rcpt: 0, Detail: "250 at last"}); err != nil {
			t.Fatal(err)
		}
		st, err := sp.ReadState(env)
		if err != nil {
			t.Fatal(err)
		}
		if st.Rcpts[0].Status != spool.Sent || st.Rcpts[0].Reply != "250 at last" {
			t.Errorf("write cut at byte %d: the record after it was spoiled: %+v (damaged %d)", cut, st.Rcpts[0], st.Damaged)
		}
		if s := st.Rcpts[1].Status; s != spool.Sent && s != spool.Pending {
			t.Errorf("write cut at byte %d: rcpt 1 is %s", cut, s)
		}
		if cut >= wrote-1 {
			break
		}
	}
}

// TestReserve: free space below the reserve plus the need is ErrReserve,
// which counts as a full disk (452).
func TestReserve(t *testing.T) {
	f := testenv.NewFaults()
	sp, _ := spool.Create(t.TempDir(), f.Ops())
	f.SetFree(10 << 20)
	err := sp.CheckReserve(64<<20, 0)
	if !errors.Is(err, spool.ErrReserve) || !spool.IsNoSpace(err) {
		t.Errorf("10 MB free, 64 MB reserve: %v", err)
	}
	if err := sp.CheckReserve(8<<20, 4<<20); !errors.Is(err, spool.ErrReserve) {
		t.Errorf("10 MB free, 8 MB reserve + 4 MB need: %v", err)
	}
	if err := sp.CheckReserve(8<<20, 1<<20); err != nil {
		t.Errorf("10 MB free, 8 MB reserve + 1 MB need: %v", err)
	}
	f.FailOp("statfs", syscall.EIO)
	if err := sp.CheckReserve(0, 0); err == nil || spool.IsNoSpace(err) {
		t.Errorf("statfs failing: %v, want an error that is not 'no space'", err)
	}
	faults.Add(4)
}

// TestCleanStale: what a crash leaves that was never committed goes
// once it is stale; committed messages stay.
func TestCleanStale(t *testing.T) {
	clock := time.Now()
	f := testenv.NewFaults()
	f.Now = func() time.Time { return clock }
	sp, _ := spool.Create(t.TempDir(), f.Ops())
	env, err := commit(sp, content(100))
	if err != nil {
		t.Fatal(err)
	}
	// A session killed mid-DATA, and one killed between the two links.
	m, _ := sp.New()
	m.Write([]byte("Subject: half\r\n"))
	os.WriteFile(filepath.Join(sp.Dir, "data", "0000000000001000001"), []byte("orphan"), 0o600)
	var removed []string
	sp.CleanStale(time.Hour, func(p string) { removed = append(removed, p) })
	if len(removed) != 0 {
		t.Fatalf("fresh files removed: %v", removed)
	}
	clock = clock.Add(2 * time.Hour)
	sp.CleanStale(time.Hour, func(p string) { removed = append(removed, p) })
	if len(removed) != 2 {
		t.Errorf("removed %v, want the tmp file and the orphan", removed)
	}
	if ids := whole(t, sp); len(ids) != 1 || ids[0] != env.ID {
		t.Errorf("queue after cleaning: %v", ids)
	}
	_ = io.Discard
}
