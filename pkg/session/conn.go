package session

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// guardConn is the client connection as go-smtp sees it. It
//   - caps every deadline at the session's hard end, so no client can hold
//     a process longer than session_timeout, whatever go-smtp asks for;
//   - lets Data widen the read deadline to data_timeout for the body, since
//     go-smtp sets one deadline per command line and reads all of DATA
//     under it;
//   - can end the session after a reply has gone out (too many errors or
//     messages, a failed STARTTLS handshake);
//   - sends a multi-line reply in one write: go-smtp flushes every line,
//     which made EHLO's reply eight system calls and eight TCP segments.
//
// It reads no SMTP: go-smtp (with smtp-bs's patches, third_party/go-smtp)
// is the one reader of commands and content, the same in plaintext, after
// STARTTLS (where this guard sits below TLS and sees ciphertext) and under
// implicit TLS (where it sits above it).
type guardConn struct {
	net.Conn
	hardEnd time.Time

	wmu     sync.Mutex
	pending []byte // continuation lines of the reply being written

	// tlsFailed is called when a STARTTLS handshake failed: go-smtp
	// neither logs it nor says why.
	tlsFailed func()

	// replies counts the replies written in plaintext; tlsStarting is set
	// by a 220 after the greeting, which only STARTTLS answers with.
	replies     int
	tlsStarting bool

	mu      sync.Mutex
	closing bool
	// ended: the reply that closes the session has gone out. go-smtp
	// still holds pipelined commands in its buffer and would run and
	// answer them; nothing more is written, and the session's handlers
	// refuse to act (ending).
	ended bool
}

func newGuardConn(c net.Conn, hardEnd time.Time) *guardConn {
	return &guardConn{Conn: c, hardEnd: hardEnd}
}

func (g *guardConn) clamp(t time.Time) time.Time {
	if t.IsZero() || t.After(g.hardEnd) {
		return g.hardEnd
	}
	return t
}

func (g *guardConn) SetDeadline(t time.Time) error {
	g.Conn.SetWriteDeadline(g.clamp(t))
	return g.Conn.SetReadDeadline(g.clamp(t))
}

func (g *guardConn) SetReadDeadline(t time.Time) error { return g.Conn.SetReadDeadline(g.clamp(t)) }

func (g *guardConn) SetWriteDeadline(t time.Time) error {
	return g.Conn.SetWriteDeadline(g.clamp(t))
}

// extendRead gives the client d from now to finish reading.
func (g *guardConn) extendRead(d time.Duration) {
	g.Conn.SetReadDeadline(g.clamp(time.Now().Add(d)))
}

// endAfterReply makes the next read see EOF, so go-smtp closes the session
// right after the reply it is about to write.
func (g *guardConn) endAfterReply() {
	g.mu.Lock()
	g.closing = true
	g.mu.Unlock()
}

// ending reports whether the session is closing: handlers must not act on
// commands that were pipelined behind the closing reply.
func (g *guardConn) ending() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

func (g *guardConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	closing := g.closing
	g.mu.Unlock()
	if closing {
		return 0, io.EOF
	}
	g.flush()
	return g.Conn.Read(p)
}

func (g *guardConn) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.mu.Lock()
	ended := g.ended
	g.mu.Unlock()
	if ended {
		return len(p), nil // after the closing reply: say nothing more
	}
	defer func() {
		g.mu.Lock()
		g.ended = g.closing
		g.mu.Unlock()
	}()
	if isContinuation(p) && len(g.pending)+len(p) <= 4096 {
		g.pending = append(g.pending, p...)
		return len(p), nil
	}
	// go-smtp writes whole reply lines. Once TLS was to start, a write
	// that is a plaintext reply (TLS records start with a type byte, 20 to
	// 23) is go-smtp's answer to a failed handshake, after which it would
	// go on in plaintext over a stream in an unknown state. The session
	// ends after that reply instead.
	if len(p) >= 4 && isDigit(p[0]) && isDigit(p[1]) && isDigit(p[2]) && (p[3] == ' ' || p[3] == '-') {
		if g.tlsStarting {
			g.endAfterReply()
			if g.tlsFailed != nil {
				g.tlsFailed()
			}
		} else if p[3] == ' ' {
			g.tlsStarting = g.replies > 0 && string(p[:3]) == "220"
			g.replies++
		}
	}
	if len(g.pending) == 0 {
		return g.Conn.Write(p)
	}
	held := len(g.pending)
	n, err := g.Conn.Write(append(g.pending, p...))
	g.pending = g.pending[:0]
	return max(n-held, 0), err
}

// isContinuation reports whether p is exactly one plaintext reply line
// that another follows ("250-PIPELINING\r\n"). Only such a write is held
// back; a TLS record (after STARTTLS the guard sees ciphertext) starts
// with a record type byte, never a digit.
func isContinuation(p []byte) bool {
	return len(p) >= 6 && isDigit(p[0]) && isDigit(p[1]) && isDigit(p[2]) && p[3] == '-' &&
		bytes.HasSuffix(p, []byte("\r\n")) && bytes.IndexByte(p[:len(p)-2], '\n') < 0
}

// flush sends held reply lines (go-smtp always ends a reply with its last
// line; this is for a session cut off in the middle of one). It never
// waits for a write under way: Close must not hang on a client that does
// not read.
func (g *guardConn) flush() {
	if !g.wmu.TryLock() {
		return
	}
	defer g.wmu.Unlock()
	if len(g.pending) > 0 {
		g.Conn.Write(g.pending)
		g.pending = g.pending[:0]
	}
}

func (g *guardConn) Close() error {
	g.flush()
	return g.Conn.Close()
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
