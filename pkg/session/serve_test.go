package session_test

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// TestServeEndsWithContext: when the caller's context ends mid-session,
// Serve closes the connection and returns, logging the disconnect, and
// nothing is left spooled.
func TestServeEndsWithContext(t *testing.T) {
	h := newHarness(t, testenv.NewFaults().Ops(), "")
	c, s := pair(t)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, s, loopback) }()

	d := &testenv.Dialogue{T: t, Conn: c, R: bufio.NewReader(c)}
	d.Expect(220)
	d.Cmd("EHLO client.example", 250)
	d.Cmd("MAIL FROM:<a@example.org>", 250)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(d.R); err != nil {
		t.Fatalf("the connection is still open after Serve returned: read %q, %v", rest, err)
	}
	if !strings.Contains(h.log.String(), "disconnect") {
		t.Errorf("no disconnect logged:\n%s", h.log.String())
	}
	h.assertEmpty("after the context ended")
}
