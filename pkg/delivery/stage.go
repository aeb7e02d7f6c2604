package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Every stage of a session to a next hop is bounded by a deadline of our
// own on the net.Conn we dialed. go-smtp sets deadlines of its own (5
// minutes for the greeting, which nothing of ours could shorten, and
// none at all around a TLS handshake); stageConn ignores those and
// applies the one the current stage calls for, so that a server that
// accepts TCP and then says nothing costs command_timeout, not 5m20s of
// a pass that holds the spool lock. A timeout comes back as a
// *TimeoutError that names the stage ("no greeting within 20s").
type stageConn struct {
	net.Conn
	stage string
	limit time.Duration
	// perWrite pushes the deadline forward on each write (the message
	// body: progress, not the whole transfer, is what is bounded).
	perWrite bool
	// greeting: the first write ends the greeting stage, and the command
	// it carries (EHLO, LHLO, HELO) becomes the stage.
	greeting bool
	// pre is read before the connection: after STARTTLS, a greeting for
	// the go-smtp client made over the TLS connection, which expects one.
	pre []byte
}

func newStageConn(c net.Conn) *stageConn { return &stageConn{Conn: c} }

// begin starts a stage bounded by limit from now.
func (s *stageConn) begin(stage string, limit time.Duration) {
	s.stage, s.limit, s.perWrite, s.greeting = stage, limit, false, stage == stageGreeting
	s.Conn.SetDeadline(time.Now().Add(limit))
}

// beginBody starts the message body: each write has limit to go through.
func (s *stageConn) beginBody(limit time.Duration) {
	s.begin(stageBody, limit)
	s.perWrite = true
}

const (
	stageGreeting  = "greeting"
	stageHandshake = "TLS handshake"
	stageBody      = "message body"
	stageFinal     = "end of data"
)

func (s *stageConn) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	n, err := s.Conn.Read(p)
	return n, s.wrap(err)
}

func (s *stageConn) Write(p []byte) (int, error) {
	if s.greeting {
		s.greeting = false
		verb := p
		if i := bytes.IndexAny(verb, " \r\n"); i >= 0 {
			verb = verb[:i]
		}
		s.stage = string(bytes.ToUpper(verb))
		s.Conn.SetDeadline(time.Now().Add(s.limit))
	} else if s.perWrite {
		s.Conn.SetDeadline(time.Now().Add(s.limit))
	}
	n, err := s.Conn.Write(p)
	return n, s.wrap(err)
}

// go-smtp's own deadlines are replaced by the stage's.
func (s *stageConn) SetDeadline(time.Time) error      { return nil }
func (s *stageConn) SetReadDeadline(time.Time) error  { return nil }
func (s *stageConn) SetWriteDeadline(time.Time) error { return nil }

func (s *stageConn) wrap(err error) error {
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return &TimeoutError{Stage: s.stage, Limit: s.limit}
	}
	return err
}

// TimeoutError says which stage of a session ran out of time.
type TimeoutError struct {
	Stage string // "greeting", "EHLO", "MAIL", "TLS handshake", "end of data", ...
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	switch e.Stage {
	case stageGreeting:
		return fmt.Sprintf("no greeting within %v", e.Limit)
	case stageHandshake:
		return fmt.Sprintf("TLS handshake not done within %v", e.Limit)
	case stageBody:
		return fmt.Sprintf("message body not taken within %v", e.Limit)
	case stageFinal:
		return fmt.Sprintf("no reply after the final dot within %v", e.Limit)
	case "connect":
		return fmt.Sprintf("no connection within %v", e.Limit)
	}
	return fmt.Sprintf("no reply to %s within %v", e.Stage, e.Limit)
}

// Timeout and Temporary make it a net.Error, as the timeout it replaces.
func (e *TimeoutError) Timeout() bool   { return true }
func (e *TimeoutError) Temporary() bool { return true }
