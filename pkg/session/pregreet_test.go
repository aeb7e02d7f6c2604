package session_test

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/session"
)

// TestEarlyTalkerRefused: a client that sends its EHLO before the
// greeting gets 554 5.5.0 and the connection is closed; the log says why.
func TestEarlyTalkerRefused(t *testing.T) {
	h := newHarness(t, testenv.NewFaults().Ops(), "")
	for _, client := range []session.Client{loopback, {Addr: netip.MustParseAddr("192.0.2.7")}} {
		c, done := h.startAfter(client, func(c net.Conn) {
			io.WriteString(c, "EHLO bot.example\r\nMAIL FROM:<spam@bot.example>\r\n")
		})
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		all, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(all), "554 5.5.0 ") || strings.Count(string(all), "\n") != 1 {
			t.Errorf("%v: early talker got %q, want one 554 5.5.0 line then the close", client, all)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the session did not end")
		}
	}
	if n := strings.Count(h.log.String(), "reject stage=greeting"); n != 2 {
		t.Errorf("want 2 greeting rejections logged, got %d:\n%s", n, h.log.String())
	}
	h.assertEmpty("early talker")
}

// TestPregreetWait: with pregreet_wait set, a client outside
// relay_networks is watched that long before the greeting; one in them is
// greeted at once.
func TestPregreetWait(t *testing.T) {
	h := newHarness(t, testenv.NewFaults().Ops(), `pregreet_wait = "300ms"`)
	stranger := session.Client{Addr: netip.MustParseAddr("192.0.2.7")}

	// Talks 50 ms in, before the (delayed) greeting.
	c, _ := h.start(stranger)
	time.Sleep(50 * time.Millisecond)
	io.WriteString(c, "EHLO bot.example\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "554 5.5.0") {
		t.Errorf("talker within pregreet_wait got %q, want 554 5.5.0", line)
	}

	// Waits for the greeting: gets it, after the wait.
	start := time.Now()
	d := h.dial(stranger)
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("stranger greeted after %v, before pregreet_wait", el)
	}
	d.Cmd("EHLO patient.example", 250)
	d.Cmd("QUIT", 221)

	// A relay client is not kept waiting.
	start = time.Now()
	d = h.dial(loopback)
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("relay client greeted after %v; pregreet_wait must not apply to it", el)
	}
	d.Cmd("QUIT", 221)
}

// TestPatientClientGreetedFast: by default there is no wait at all.
func TestPatientClientGreetedFast(t *testing.T) {
	h := newHarness(t, testenv.NewFaults().Ops(), "")
	var worst time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		d := h.dial(session.Client{Addr: netip.MustParseAddr("192.0.2.7")})
		worst = max(worst, time.Since(start))
		d.Cmd("QUIT", 221)
	}
	if worst > 100*time.Millisecond {
		t.Errorf("greeting took up to %v with pregreet_wait unset", worst)
	}
}
