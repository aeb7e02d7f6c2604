package e2e

import (
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

func TestTemporaryThenFlushDelivers(t *testing.T) {
	e, sink, addr := relayEnv(t)
	sink.SetReplies(func(string) error { return testenv.Reply(451, 4, 3, 0, "greylisted") }, nil)
	if err := smtp.SendMail(addr, nil, "s@client.example", []string{"r@remote.example"}, message("grey", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, code := e.Qrun("-once"); code != 75 {
		t.Fatalf("first pass: exit %d, want 75", code)
	}
	sink.SetReplies(nil, nil)
	if _, code := e.Qrun("-once"); code != 0 || len(sink.Messages()) != 0 {
		t.Fatalf("a pass before the retry time delivered (exit %d)", code)
	}
	out, code := e.Qrun("-flush")
	if code != 0 || !strings.Contains(out, "1 message due now") {
		t.Fatalf("qrun -flush: %d %s", code, out)
	}
	if len(sink.Messages()) != 1 || len(e.Queued()) != 0 {
		t.Fatalf("after -flush: %d delivered, %d queued", len(sink.Messages()), len(e.Queued()))
	}
}

// TestQueueToolsWhileLocked runs every queue tool while a qrun loop holds
// the spool lock.
func TestQueueToolsWhileLocked(t *testing.T) {
	e, sink, addr := relayEnv(t)
	metrics := filepath.Join(filepath.Dir(e.LogFile), "smtpbs.prom") // a directory qrun (as mail) may write
	sink.SetReplies(func(string) error { return testenv.Reply(451, 4, 3, 0, "later") }, nil)
	var ids []string
	for i := 0; i < 4; i++ {
		c, err := smtp.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Mail("s@client.example")
		c.Rcpt(fmt.Sprintf("r%d@remote.example", i))
		w, _ := c.Data()
		w.Write(message(fmt.Sprintf("tool-%d", i), "x\r\n"))
		w.Close()
		c.Quit()
	}
	ids = e.Queued()
	if len(ids) != 4 {
		t.Fatalf("queued %v", ids)
	}
	loop := testenv.Start(t, testenv.Bin(t, "qrun"), "-config", e.CfgFile, "-interval", "1h", "-metrics", metrics)
	waitFor(t, func() bool { return strings.Count(e.Log(), "deferred id=") == 4 })

	tool := func(want int, args ...string) string {
		t.Helper()
		out, code := e.Qrun(args...)
		if code != want {
			t.Fatalf("qrun %v: exit %d, want %d\n%s", args, code, want, out)
		}
		return out
	}
	tool(0, "-hold", ids[0])
	if _, err := os.Stat(filepath.Join(e.SpoolDir, "hold", ids[0])); err != nil {
		t.Fatal("-hold did not move the message to hold/")
	}
	if out := tool(0, "-list"); !strings.Contains(out, "(held)") {
		t.Errorf("-list does not show the held message:\n%s", out)
	}
	tool(0, "-delete", ids[1])
	for _, d := range []string{"queue", "data", "state"} {
		if _, err := os.Stat(filepath.Join(e.SpoolDir, d, ids[1])); err == nil {
			t.Errorf("-delete left %s/%s", d, ids[1])
		}
	}
	tool(65, "-delete", "0000000000000000000") // not there: EX_DATAERR
	tool(65, "-hold", "../../etc/passwd")
	tool(0, "-bounce", ids[2])

	// -flush wakes the running qrun, which delivers ids[3] and the bounce
	// of ids[2], but not the held ids[0].
	sink.SetReplies(nil, nil)
	if out := tool(0, "-flush"); !strings.Contains(out, fmt.Sprintf("pid %d", loop.Process.Pid)) {
		t.Errorf("-flush did not wake the running qrun:\n%s", out)
	}
	waitFor(t, func() bool { return len(sink.Messages()) == 2 }, e.Log)
	var gotBounce, gotMsg bool
	for _, m := range sink.Messages() {
		gotBounce = gotBounce || (m.From == "" && strings.Contains(string(m.Data), "bounced by the administrator"))
		gotMsg = gotMsg || strings.Contains(string(m.Data), "Subject: tool-3")
	}
	if !gotBounce || !gotMsg {
		t.Errorf("after -flush: bounce %v, message %v", gotBounce, gotMsg)
	}
	tool(0, "-release", ids[0])
	tool(0, "-flush", ids[0])
	waitFor(t, func() bool { return len(sink.Messages()) == 3 })
	waitFor(t, func() bool { return len(e.Queued()) == 0 })
	b, err := os.ReadFile(metrics)
	if err != nil || !strings.Contains(string(b), "smtpbs_queue_messages") {
		t.Errorf("no metrics file: %v %s", err, b)
	}
}

func TestRouteExplains(t *testing.T) {
	e := testenv.New(t)
	e.Extra["smtp"] = `local_domains = ["mx.test.example"]`
	e.Extra["delivery"] = `resolver = "127.0.0.1:9"
[delivery.routes]
"partner.example" = "[192.0.2.25]:2525"`
	e.WriteConfig()
	out, code := e.Qrun("-route", "someone@partner.example")
	if code != 0 || !strings.Contains(out, "route for its domain to [192.0.2.25]:2525") || !strings.Contains(out, "192.0.2.25:2525") {
		t.Errorf("route: %d\n%s", code, out)
	}
	out, code = e.Qrun("-route", "someone@elsewhere.example")
	if code != 75 || !strings.Contains(out, "MX hosts of elsewhere.example") || !strings.Contains(out, "would be deferred") {
		t.Errorf("MX route with a DNS failure: exit %d, want 75\n%s", code, out)
	}
	out, _ = e.Qrun("-route", "postmaster@mx.test.example")
	if !strings.Contains(out, "local domain") {
		t.Errorf("local domain not said:\n%s", out)
	}
	if _, code := e.Qrun("-route", "not-an-address"); code != 65 {
		t.Errorf("-route of garbage: exit %d, want 65", code)
	}
}

func waitFor(t *testing.T, cond func() bool, show ...func() string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range show {
				t.Log(f())
			}
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
