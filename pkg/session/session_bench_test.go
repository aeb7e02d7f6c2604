package session_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

// BenchmarkSession is one whole session over 127.0.0.1 after smtp-bs has
// started (its process start is not in it): greeting, EHLO, MAIL, RCPT,
// DATA of 2 KB or 100 KB, QUIT, the message committed to a real spool. The
// client's side runs in the loop too. Its CPU profile is what scripts/pgo.sh
// turns into cmd/smtp-bs/default.pgo, so it should stay what a session does.
func BenchmarkSession(b *testing.B) {
	for _, size := range []int{2 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			h := newHarness(b, spool.Ops{}, "")
			msg := benchMessage(size)
			b.SetBytes(int64(len(msg)))
			n := 0
			for b.Loop() {
				c, s := pair(b)
				done := make(chan error, 1)
				go func() { done <- h.srv.Serve(context.Background(), s, loopback) }()
				d := &testenv.Dialogue{T: b, Conn: c, R: bufio.NewReader(c)}
				d.Expect(220)
				d.Cmd("EHLO client.example", 250)
				d.Cmd("MAIL FROM:<sender@example.org>", 250)
				d.Cmd("RCPT TO:<rcpt@example.net>", 250)
				d.Cmd("DATA", 354)
				d.Send(string(msg))
				d.Cmd(".", 250)
				d.Cmd("QUIT", 221)
				c.Close()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.StopTimer()
			if got := len(h.files("queue")); got != n {
				b.Fatalf("%d sessions, %d messages queued", n, got)
			}
		})
	}
}

// benchMessage is a plain text message of about size bytes in 76-column
// lines, as mail mostly is.
func benchMessage(size int) []byte {
	var m bytes.Buffer
	m.WriteString("From: sender@example.org\r\nTo: rcpt@example.net\r\nSubject: benchmark\r\nMessage-ID: <bench@example.org>\r\n\r\n")
	line := "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	for m.Len() < size {
		m.WriteString(line)
	}
	return m.Bytes()
}
