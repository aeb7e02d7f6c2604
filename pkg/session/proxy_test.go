package session_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/launcher"
	"smtp-bs/pkg/proxy"
	"smtp-bs/pkg/session"
)

// TestEarlyTalkerBehindProxy: a client whose commands came in the same
// read as the balancer's PROXY header talked before the greeting, though
// its bytes sit in the header's buffer, not in the socket: it is refused
// like any early talker, and nothing it sent is lost on the way there.
func TestEarlyTalkerBehindProxy(t *testing.T) {
	h := newHarness(t, testenv.NewFaults().Ops(), "")
	s, c := testenv.TCPPair(t)
	io.WriteString(c, "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\nEHLO bot.example\r\n")
	pc, hdr, err := proxy.Read(s, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Buffered() == 0 {
		t.Fatal("the EHLO was not read with the header: the test tests nothing")
	}
	conn := &launcher.Conn{Conn: pc, Peer: hdr.Client.Addr()}
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(context.Background(), conn, session.Client{Addr: hdr.Client.Addr()}) }()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(all), "554 5.5.0 ") {
		t.Errorf("early talker behind a balancer got %q, want 554 5.5.0", all)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.log.String(), "reject stage=greeting peer=192.0.2.7") {
		t.Errorf("log:\n%s", h.log.String())
	}
}
