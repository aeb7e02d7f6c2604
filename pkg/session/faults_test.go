package session_test

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"smtp-bs/internal/testenv"
)

// faults counts the faults the tests in this package injected.
var faults atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	if n := faults.Load(); n > 0 {
		fmt.Printf("session: %d spool faults exercised, every one answered 451/452 with nothing left behind\n", n)
	}
	os.Exit(code)
}

// transaction runs MAIL, RCPT, DATA and the content, and returns the
// first reply that is not a success, or the final one.
func transaction(d *testenv.Dialogue, content string, mailParams string) (stage string, code int, text string) {
	d.T.Helper()
	for _, step := range []struct{ cmd, stage string }{
		{"MAIL FROM:<a@client.example>" + mailParams, "mail"},
		{"RCPT TO:<b@remote.example>", "rcpt"},
		{"DATA", "data"},
	} {
		d.Send(step.cmd + "\r\n")
		code, text = d.Reply()
		if code >= 400 {
			return step.stage, code, text
		}
	}
	d.Send(content + ".\r\n")
	code, text = d.Reply()
	return "content", code, text
}

// bigMessage needs several writes through the spool's 64 KiB buffer.
func bigMessage(subject string) string {
	var b strings.Builder
	b.WriteString("From: a@client.example\r\nSubject: " + subject + "\r\n\r\n")
	for i := 0; b.Len() < 150<<10; i++ {
		fmt.Fprintf(&b, "line %06d: the quick brown fox jumps over the lazy dog\r\n", i)
	}
	return b.String()
}

// TestSpoolFaultAtEveryCall makes each spool call of a session fail in
// turn, with each errno a disk can give: the client gets 452 4.3.1 for a
// full disk and 451 4.3.0 otherwise, never a 5xx (which would make it
// bounce the mail), nothing half-written is left, and the session goes on
// to queue the message once the disk is well again.
func TestSpoolFaultAtEveryCall(t *testing.T) {
	content := bigMessage("faults")
	clean := testenv.NewFaults()
	h := newHarness(t, clean.Ops(), "")
	d := h.dial(loopback)
	d.Cmd("EHLO client.example", 250)
	clean.Reset()
	if _, code, text := transaction(d, content, ""); code != 250 {
		t.Fatalf("clean run: %s", text)
	}
	calls := clean.Calls()
	if len(calls) < 6 {
		t.Fatalf("a commit made only %d spool calls: %v", len(calls), calls)
	}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS} {
		for i := range calls {
			name := fmt.Sprintf("%v at call %d (%s)", errno, i+1, calls[i])
			f := testenv.NewFaults()
			h := newHarness(t, f.Ops(), "")
			d := h.dial(loopback)
			d.Cmd("EHLO client.example", 250)
			f.Reset()
			f.FailCall(i+1, errno)
			_, code, text := transaction(d, content, "")
			if f.Injected() != 1 {
				t.Fatalf("%s: fault not injected (calls %v)", name, f.Calls())
			}
			faults.Add(1)
			want := "451 4.3.0"
			if errno == syscall.ENOSPC || errno == syscall.EDQUOT {
				want = "452 4.3.1"
			}
			if !hasCode(text, want) {
				t.Errorf("%s: got %q, want %s", name, text, want)
			}
			if strings.Contains(text, errno.Error()) || strings.Contains(text, h.sp.Dir) {
				t.Errorf("%s: the reply tells the client our local detail: %q", name, text)
			}
			h.assertEmpty(name)
			// The disk recovers; the client retries in the same session.
			f.Reset()
			d.Cmd("RSET", 250)
			if _, code, text := transaction(d, content, ""); code != 250 {
				t.Fatalf("%s: retry: %s", name, text)
			}
			q := h.queued()
			if len(q) != 1 {
				t.Fatalf("%s: want 1 message queued after the retry, got %d", name, len(q))
			}
			for _, b := range q {
				if string(body(b)) != content {
					t.Errorf("%s: queued content differs", name)
				}
			}
			if l := h.log.String(); !strings.Contains(l, "error stage=") && !strings.Contains(l, "reject stage=mail") {
				t.Errorf("%s: the log does not say what failed:\n%s", name, h.log.String())
			}
			d.Cmd("QUIT", 221)
			_ = code
		}
	}
}

// TestSpoolFaultDuringBDAT: the same for a chunked message.
func TestSpoolFaultDuringBDAT(t *testing.T) {
	content := bigMessage("bdat")
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		for _, op := range []string{"create", "write", "fsync", "link"} {
			f := testenv.NewFaults()
			h := newHarness(t, f.Ops(), "")
			d := h.dial(loopback)
			d.Cmd("EHLO client.example", 250)
			d.Cmd("MAIL FROM:<a@client.example>", 250)
			d.Cmd("RCPT TO:<b@remote.example>", 250)
			f.FailOp(op, errno)
			half := len(content) / 2
			d.Send(fmt.Sprintf("BDAT %d\r\n%s", half, content[:half]))
			code, text := d.Reply()
			if code == 250 {
				d.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(content)-half, content[half:]))
				code, text = d.Reply()
			}
			faults.Add(int64(f.Injected()))
			want := "451 4.3.0"
			if errno == syscall.ENOSPC {
				want = "452 4.3.1"
			}
			if !hasCode(text, want) {
				t.Errorf("BDAT, %s fails with %v: got %q, want %s", op, errno, text, want)
			}
			h.assertEmpty(op)
			d.Cmd("NOOP", 250)
			_ = code
		}
	}
}

// TestReadOnlySpool: a spool that cannot be written answers 451, at
// whichever step it first refuses.
func TestReadOnlySpool(t *testing.T) {
	for _, op := range []string{"create", "link", "fsync"} {
		f := testenv.NewFaults()
		h := newHarness(t, f.Ops(), "")
		d := h.dial(loopback)
		d.Cmd("EHLO client.example", 250)
		f.FailOp(op, syscall.EROFS)
		_, _, text := transaction(d, msg("ro"), "")
		faults.Add(int64(f.Injected()))
		if !hasCode(text, "451 4.3.0") {
			t.Errorf("read-only spool (%s): got %q, want 451 4.3.0", op, text)
		}
		h.assertEmpty("read-only " + op)
	}
}

// TestReserve: below min_free_bytes (plus the declared SIZE) MAIL is
// refused with 452 4.3.1, before any content is sent.
func TestReserve(t *testing.T) {
	f := testenv.NewFaults()
	h := newHarness(t, f.Ops(), "")
	h.srv.Config.Spool.MinFreeBytes = 64 << 20
	d := h.dial(loopback)
	d.Cmd("EHLO client.example", 250)

	f.SetFree(10 << 20)
	stage, _, text := transaction(d, msg("reserve"), "")
	faults.Add(1)
	if stage != "mail" || !hasCode(text, "452 4.3.1") {
		t.Errorf("below the reserve: %s got %q, want MAIL refused with 452 4.3.1", stage, text)
	}
	d.Cmd("RCPT TO:<b@remote.example>", 503) // no transaction
	d.Cmd("DATA", 503)

	f.SetFree(70 << 20)
	stage, _, text = transaction(d, msg("reserve"), " SIZE=20000000")
	faults.Add(1)
	if stage != "mail" || !hasCode(text, "452 4.3.1") {
		t.Errorf("reserve + SIZE above free space: %s got %q, want MAIL refused with 452 4.3.1", stage, text)
	}
	h.assertEmpty("reserve")

	if _, _, text := transaction(d, msg("reserve"), " SIZE=1000"); !hasCode(text, "250") {
		t.Errorf("enough space: got %q", text)
	}
	if len(h.queued()) != 1 {
		t.Error("message not queued once there is space")
	}

	// A statfs that fails is a local error, not a full disk.
	f.FailOp("statfs", syscall.EIO)
	d.Cmd("MAIL FROM:<a@client.example>", 451)
	faults.Add(1)
	if !strings.Contains(h.log.String(), "reject stage=mail") {
		t.Errorf("the refusal is not logged:\n%s", h.log.String())
	}
}
