package runner

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// TestRetryTableMatchesREADME reads the table admins read and checks the
// code against it, so the two cannot drift apart.
func TestRetryTableMatchesREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| failed attempts | next try after |")
	if !ok {
		t.Fatal("README has no retry table")
	}
	row := regexp.MustCompile(`(?m)^\| (\d+)( and later)? \| (\d+) (min|h) \|$`)
	rows := row.FindAllStringSubmatch(table, -1)
	if len(rows) < 5 {
		t.Fatalf("retry table has %d rows", len(rows))
	}
	d := config.Default().Delivery
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		v, _ := strconv.Atoi(r[3])
		want := time.Duration(v) * time.Minute
		if r[4] == "h" {
			want = time.Duration(v) * time.Hour
		}
		if got := Backoff(d.RetryFirst.Duration, d.RetryMax.Duration, n); got != want {
			t.Errorf("after %d attempts: code says %v, README says %v", n, got, want)
		}
		if r[2] != "" {
			for m := n; m < n+20; m++ {
				if got := Backoff(d.RetryFirst.Duration, d.RetryMax.Duration, m); got != want {
					t.Errorf("after %d attempts: %v, README says %v from %d on", m, got, want, n)
				}
			}
		}
	}
}

// fake records what it was asked and answers from a table.
type fake struct {
	calls  [][]string
	answer func(rcpt string) (spool.Status, string)
}

func (f *fake) Route(rcpt string) delivery.Destination {
	return delivery.Destination{Key: "fake"}
}

func (f *fake) Deliver(_ context.Context, _ delivery.Destination, env *spool.Envelope, rcpts []int, data io.Reader) []delivery.Result {
	io.Copy(io.Discard, data)
	var names []string
	var out []delivery.Result
	for _, r := range rcpts {
		names = append(names, env.Rcpts[r])
		st, reply := f.answer(env.Rcpts[r])
		out = append(out, delivery.Result{Rcpt: r, Status: st, Reply: reply})
	}
	f.calls = append(f.calls, names)
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T, f *fake) (*Runner, *spool.Spool, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	sp, err := spool.Create(t.TempDir(), spool.Ops{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Hostname = "mx.example"
	return &Runner{Spool: sp, Config: cfg, Deliverer: f, Log: maillog.Discard(), Jitter: func() float64 { return 0 }}, sp, clk
}

func queue(t *testing.T, sp *spool.Spool, from string, rcpts ...string) string {
	t.Helper()
	m, err := sp.New()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(m, "Subject: test\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n")
	env := &spool.Envelope{Received: sp.Now(), From: from, Rcpts: rcpts, Peer: "127.0.0.1", Helo: "c", Protocol: "ESMTP", Body: "7BIT"}
	if err := m.Commit(env); err != nil {
		t.Fatal(err)
	}
	// The envelope's mtime is "now" in real time; make it due on the fake clock.
	os.Chtimes(filepath.Join(sp.Dir, "queue", env.ID), sp.Now(), sp.Now())
	return env.ID
}

func TestRetryScheduleAndExpiry(t *testing.T) {
	f := &fake{answer: func(string) (spool.Status, string) { return spool.Deferred, "relay said: 451 4.3.0 later" }}
	r, sp, clk := setup(t, f)
	id := queue(t, sp, "s@example.org", "r@example.net")
	var waits []time.Duration
	for i := 0; i < 6; i++ {
		if _, err := r.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		ents, _ := sp.Scan(nil)
		if len(ents) != 1 {
			t.Fatalf("pass %d: %d messages queued", i, len(ents))
		}
		waits = append(waits, ents[0].NextTry.Sub(clk.t))
		// A pass before the message is due does not touch it.
		r.Pass(context.Background())
		if len(f.calls) != i+1 {
			t.Fatalf("pass before due delivered: %d calls", len(f.calls))
		}
		clk.t = ents[0].NextTry
	}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour, time.Hour}
	for i := range want {
		if waits[i].Round(time.Second) != want[i] {
			t.Errorf("wait %d = %v, want %v", i, waits[i], want[i])
		}
	}
	// Past the lifetime the message is bounced, not tried again.
	clk.t = clk.t.Add(5 * 24 * time.Hour)
	st, _ := r.Pass(context.Background())
	if len(f.calls) != 6 || st.Failed != 1 || st.Bounces != 1 {
		t.Fatalf("expiry: calls %d, stats %+v", len(f.calls), st)
	}
	ents, _ := sp.Scan(nil)
	if len(ents) != 1 || ents[0].ID != id+".b1" {
		t.Fatalf("want only the bounce left, got %+v", ents)
	}
	env, _ := sp.ReadEnvelope(id + ".b1")
	data, _ := sp.OpenData(env)
	b, _ := io.ReadAll(data)
	data.Close()
	if !bytes.Contains(b, []byte("expired")) || !bytes.Contains(b, []byte("Status: 4.4.7")) {
		t.Errorf("expiry bounce lacks reason or status:\n%s", b)
	}
}

func TestBounceIsMultipartReportAndNullSenderNeverBounced(t *testing.T) {
	f := &fake{answer: func(r string) (spool.Status, string) {
		if strings.HasPrefix(r, "bad") {
			return spool.Failed, "relay.example said: 550 5.1.1 no such user (in reply to RCPT TO)"
		}
		return spool.Sent, "relay.example said: 250 ok"
	}}
	r, sp, _ := setup(t, f)
	id := queue(t, sp, "s@example.org", "good@example.net", "bad1@example.net", "bad2@example.net")
	nullID := queue(t, sp, "", "bad3@example.net")
	if _, err := r.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	ents, _ := sp.Scan(nil)
	if len(ents) != 1 || ents[0].ID != id+".b1" {
		t.Fatalf("want one bounce queued (none for %s), got %+v", nullID, ents)
	}
	env, _ := sp.ReadEnvelope(id + ".b1")
	if env.From != "" || len(env.Rcpts) != 1 || env.Rcpts[0] != "s@example.org" {
		t.Errorf("bounce envelope %+v", env)
	}
	data, _ := sp.OpenData(env)
	defer data.Close()
	msg, err := mail.ReadMessage(data)
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	var status string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		types = append(types, p.Header.Get("Content-Type"))
		b, _ := io.ReadAll(p)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "message/delivery-status") {
			status = string(b)
		}
	}
	if len(types) != 3 || !strings.HasPrefix(types[0], "text/plain") || types[2] != "text/rfc822-headers" {
		t.Errorf("parts %v", types)
	}
	for _, want := range []string{"Reporting-MTA: dns; mx.example", "Final-Recipient: rfc822; bad1@example.net",
		"Final-Recipient: rfc822; bad2@example.net", "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; relay.example",
		"Diagnostic-Code: smtp; 550 5.1.1 no such user"} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Contains(status, "good@") {
		t.Error("the delivered recipient is in the bounce")
	}
	// The bounce itself fails: it is dropped, never bounced.
	r.Pass(context.Background())
	if ents, _ := sp.Scan(nil); len(ents) != 0 {
		t.Errorf("queue not empty: %+v", ents)
	}
}

func TestDamagedEnvelopeMovedAsideRestDelivered(t *testing.T) {
	f := &fake{answer: func(string) (spool.Status, string) { return spool.Sent, "250 ok" }}
	r, sp, _ := setup(t, f)
	bad := queue(t, sp, "s@example.org", "a@example.net")
	good := queue(t, sp, "s@example.org", "b@example.net")
	p := filepath.Join(sp.Dir, "queue", bad)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-10], 0o600) // truncated: no end line
	os.Chtimes(p, sp.Now(), sp.Now())
	os.WriteFile(filepath.Join(sp.Dir, "queue", "not-an-id"), []byte("junk"), 0o600)
	st, err := r.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 1 || f.calls[0][0] != "b@example.net" {
		t.Errorf("deliveries %v, want only %s's", f.calls, good)
	}
	if st.MovedAside != 2 {
		t.Errorf("moved aside %d, want 2", st.MovedAside)
	}
	aside, _ := os.ReadDir(filepath.Join(sp.Dir, "corrupt"))
	names := []string{}
	for _, de := range aside {
		names = append(names, de.Name())
	}
	if !strings.Contains(strings.Join(names, " "), bad+".queue") || !strings.Contains(strings.Join(names, " "), "not-an-id") {
		t.Errorf("corrupt/ holds %v", names)
	}
}
