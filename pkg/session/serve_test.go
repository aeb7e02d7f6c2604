package session_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// TestServeEndsWithContext: when the caller's context ends mid-session,
// Serve closes the connection and returns, and nothing is left spooled.
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
	select {
	case err := <-done:
		t.Fatalf("Serve returned before its context ended: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	// Closed, the client reads EOF (or a reset); still open, it times out.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if rest, err := io.ReadAll(d.R); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the connection is still open after Serve returned: read %q", rest)
		}
	}
	h.assertEmpty("after the context ended")
}
