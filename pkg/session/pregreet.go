package session

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/sys/unix"

	"smtp-bs/pkg/launcher"
)

// Early talkers. RFC 5321 4.3.1 makes the client wait for the greeting;
// spam bots often do not, and blast their commands the moment the TCP
// handshake is done. A client that speaks before the greeting is refused
// with 554 5.5.0, as Postfix's postscreen and Exim's
// smtp_enforce_sync do.
//
// The check costs nothing by default: right before the greeting is due,
// one non-blocking peek (recv MSG_PEEK|MSG_DONTWAIT) asks whether input is
// already waiting. A client that has not seen our greeting yet cannot have
// answered it, so this has no false positives, and since smtp-bs starts a
// fresh process per connection (several milliseconds before the greeting)
// it catches the bots that talk at once. A delay before the greeting
// catches more (postscreen waits 6 s), but delays every honest client by
// as much: the greeting must stay fast (the performance budget is a few
// milliseconds), so [smtp] pregreet_wait is 0 unless the admin chooses
// otherwise, and even then applies only to clients outside relay_networks.

var errEarlyTalker = reply(554, smtp.EnhancedCode{5, 5, 0}, "Protocol error: talked before the greeting")

// earlyTalk reports whether input is pending on conn now, or arrives
// within wait. It consumes nothing. Connections that are not sockets
// (pipes, net.Pipe in tests) are never early talkers.
func earlyTalk(conn net.Conn, wait time.Duration) bool {
	// Behind a balancer, input may already sit in the buffer the PROXY
	// header was read through, out of the socket's sight.
	if b, ok := netConn(conn).(interface{ Buffered() int }); ok && b.Buffered() > 0 {
		return true
	}
	rc := rawConn(conn)
	if rc == nil {
		return false
	}
	if wait > 0 {
		conn.SetReadDeadline(time.Now().Add(wait))
		defer conn.SetReadDeadline(time.Time{})
	}
	var pending bool
	var buf [1]byte
	err := rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			// Nothing yet: with a wait, let the poller wait for input (or
			// the deadline); without one, that is the answer.
			return wait <= 0
		}
		pending = err == nil && n > 0 // n == 0: the client hung up
		return true
	})
	return err == nil && pending
}

// refuseEarly answers an early talker and closes the connection.
func refuseEarly(conn net.Conn, hostname string) {
	Refuse(conn, fmt.Sprintf("%d %d.%d.%d %s %s", errEarlyTalker.Code, errEarlyTalker.EnhancedCode[0],
		errEarlyTalker.EnhancedCode[1], errEarlyTalker.EnhancedCode[2], hostname, errEarlyTalker.Message))
}

// Refuse writes the reply line and closes the connection. It half-closes
// first and discards what the client still sends for a moment, so that
// closing with unread input (which makes the kernel send a RST) does not
// destroy the reply before the client reads it. Nothing read is parsed.
func Refuse(conn net.Conn, line string) {
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "%s\r\n", line)
	if cw, ok := netConn(conn).(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	conn.Close()
}

// netConn unwraps the launcher's connection to the socket underneath.
func netConn(c net.Conn) net.Conn {
	if lc, ok := c.(*launcher.Conn); ok {
		return lc.Conn
	}
	return c
}

func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := netConn(c).(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
