package inspect

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/pkg/runner"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
)

const msg = "Received: from client\r\n\tby mx\r\nSubject: hello\r\nFrom: <b@example.net>\r\n\r\nthe body line\r\n"

func enqueue(t *testing.T, sp *spool.Spool, id string, arrived time.Time, rcpts ...string) *spool.Envelope {
	t.Helper()
	env := &spool.Envelope{ID: id, Received: arrived, From: "b@example.net", Rcpts: rcpts, Peer: "192.0.2.1",
		Helo: "client.example", Protocol: "ESMTP", Size: int64(len(msg)), Body: "7BIT"}
	if err := sp.Enqueue(env, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	return env
}

func newSpool(t *testing.T) *spool.Spool {
	sp, err := spool.Create(filepath.Join(t.TempDir(), "spool"), spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestShow(t *testing.T) {
	sp := newSpool(t)
	now := time.Now()
	env := enqueue(t, sp, "0000000000001000001", now.Add(-time.Hour), "a@example.org", "c@example.com")
	if err := sp.Append(env.ID, spool.Record{Time: now, Kind: "deferred", Rcpt: 1, Detail: "451 4.7.1 greylisted"}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Show(&b, sp, env.ID, false, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"id:        0000000000001000001", "from:      <b@example.net>", "client:    192.0.2.1 (helo client.example), ESMTP",
		"<a@example.org>  pending", "<c@example.com>  deferred, 1 attempts", "last reply: 451 4.7.1 greylisted",
		"*** HEADER ***\nReceived: from client\n\tby mx\nSubject: hello\n", "*** BODY: 15 bytes", "status:    queued"} {
		if !strings.Contains(out, want) {
			t.Errorf("-show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "the body line") {
		t.Errorf("body printed without -body:\n%s", out)
	}
	b.Reset()
	Show(&b, sp, env.ID, true, now)
	if !strings.Contains(b.String(), "*** BODY ***\nthe body line\n*** END ***") {
		t.Errorf("-body:\n%s", b.String())
	}
	sp.Hold(env.ID)
	b.Reset()
	Show(&b, sp, env.ID, false, now)
	if !strings.Contains(b.String(), "status:    held") {
		t.Errorf("held message:\n%s", b.String())
	}
	for _, id := range []string{"0000000000009000009", "../etc/passwd", "nonsense"} {
		err := Show(&b, sp, id, false, now)
		if !errors.Is(err, ErrNoSuchID) || ExitCode(err) != sysexits.DataErr {
			t.Errorf("Show(%q) = %v (exit %d), want no such ID, 65", id, err, ExitCode(err))
		}
	}
}

// A message whose content a qrun has open for delivery is marked; one an
// admin only reads (qrun -show) is not.
func TestDelivering(t *testing.T) {
	sp := newSpool(t)
	env := enqueue(t, sp, "0000000000001000001", time.Now(), "a@example.org")
	if sp.Delivering(env.ID) {
		t.Fatal("delivering before anyone opened it")
	}
	data, err := sp.OpenData(env)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Delivering(env.ID) {
		t.Error("marked delivering while only read")
	}
	data.MarkDelivering()
	if !sp.Delivering(env.ID) {
		t.Error("not marked delivering while its content is open")
	}
	items, _ := runner.List(sp)
	var b bytes.Buffer
	runner.WriteText(&b, items, time.Now())
	if !items[0].Delivering || !strings.Contains(b.String(), "(delivering)") {
		t.Errorf("-list does not mark it:\n%s", b.String())
	}
	data.Close()
	if sp.Delivering(env.ID) {
		t.Error("still delivering after Close")
	}
}

func TestShape(t *testing.T) {
	sp := newSpool(t)
	now := time.Now()
	enqueue(t, sp, "0000000000001000001", now.Add(-2*time.Minute), "a@example.org", "b@Example.org", "c@example.com")
	enqueue(t, sp, "0000000000002000001", now.Add(-30*time.Minute), "d@example.org")
	enqueue(t, sp, "0000000000003000001", now.Add(-48*time.Hour), "e@example.com")
	held := enqueue(t, sp, "0000000000004000001", now, "f@example.net")
	sp.Hold(held.ID)
	items, err := runner.List(sp)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	Shape(&b, items, now)
	lines := strings.Split(b.String(), "\n")
	fields := func(i int) string { return strings.Join(strings.Fields(lines[i]), " ") }
	for i, want := range []string{
		"domain T 5 10 20 40 80 160 320 640 1280 1280+",
		"TOTAL 5 3 0 0 1 0 0 0 0 0 1",
		"example.org 3 2 0 0 1 0 0 0 0 0 0",
		"example.com 2 1 0 0 0 0 0 0 0 0 1",
	} {
		if fields(i) != want {
			t.Errorf("line %d = %q, want %q\n%s", i, fields(i), want, b.String())
		}
	}
	if strings.Contains(b.String(), "example.net") || !strings.Contains(b.String(), "1 message on hold") {
		t.Errorf("held message counted:\n%s", b.String())
	}
}

func TestExpandAndEach(t *testing.T) {
	sp := newSpool(t)
	a := enqueue(t, sp, "0000000000001000001", time.Now(), "a@example.org")
	b := enqueue(t, sp, "0000000000002000001", time.Now(), "a@example.org")
	sp.Hold(b.ID)
	ids, err := Expand(sp, []string{"ALL"}, func(e spool.Entry) bool { return !e.Held })
	if err != nil || len(ids) != 1 || ids[0] != a.ID {
		t.Errorf("ALL not held = %v %v", ids, err)
	}
	ids, _ = Expand(sp, []string{"ALL"}, nil)
	if len(ids) != 2 {
		t.Errorf("ALL = %v", ids)
	}
	var out, errw bytes.Buffer
	code := Each(&out, &errw, []string{a.ID, "0000000000009000009", "ALL"}, func(id string) (string, error) { return "deleted", sp.Remove(id) })
	if code != sysexits.DataErr || !strings.Contains(out.String(), a.ID+": deleted") ||
		!strings.Contains(errw.String(), "0000000000009000009: no such message") || !strings.Contains(errw.String(), `"ALL" is not a queue ID`) {
		t.Errorf("Each: %d\n%s\n%s", code, out.String(), errw.String())
	}
}

func TestSpoolError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nospool")
	_, err := spool.Open(dir, spool.Ops{})
	e := SpoolError(dir, err)
	if ExitCode(e) != sysexits.IOErr || !strings.Contains(e.Error(), "qrun -init") {
		t.Errorf("missing spool: %v (exit %d)", e, ExitCode(e))
	}
	if os.Geteuid() != 0 {
		os.MkdirAll(dir, 0)
		_, err = spool.Open(dir, spool.Ops{})
		if e := SpoolError(dir, err); !strings.Contains(e.Error(), "qrun -check") {
			t.Errorf("unreadable spool: %v", e)
		}
	}
	if e := SpoolError(dir, os.ErrPermission); !strings.Contains(e.Error(), "cannot read the spool") || ExitCode(e) != sysexits.IOErr {
		t.Errorf("permission: %v", e)
	}
}

func TestRouteExit(t *testing.T) {
	for account, want := range map[string]int{
		"<a@x>: delivered to the MX hosts of x (TLS opportunistic)\n  1. mx.x [192.0.2.1]\n": 0,
		"<a@x>: delivered to the MX hosts of x\n  now: would bounce: null MX\n":              sysexits.Unavail,
		"<a@x>: delivered to the MX hosts of x\n  now: would be deferred: SERVFAIL\n":        sysexits.TempFail,
		"<a@h>: delivered on this host (local domain h)\n  refused at RCPT time: no user\n":  sysexits.Unavail,
	} {
		if got := RouteExit(account); got != want {
			t.Errorf("RouteExit(%q) = %d, want %d", account, got, want)
		}
	}
}
