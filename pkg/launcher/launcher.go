// Package launcher finds the one connection smtp-bs was started for.
//
// systemd (Accept=yes) and systemd-socket-activate pass it as fd 3 with
// LISTEN_PID set to our pid; xinetd, inetd and tcpserver pass it as fds 0
// and 1; a local program that runs smtp-bs over a pipe (as with sendmail
// -bs) passes fds 0 and 1 that are not sockets: that is local submission.
package launcher

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// Conn is the connection and what is known of its peer.
type Conn struct {
	net.Conn
	// Peer is the client's address (v4-mapped addresses unmapped); invalid
	// for a local submission or a unix socket.
	Peer netip.Addr
	// Local is true when the peer is a local program (a pipe or a unix
	// socket), not a network client.
	Local bool
	// Via names how the connection arrived: "socket-activation", "inetd" or "pipe".
	Via string
	// Balancer is the trusted load balancer's address when the connection
	// came through one (Unproxy); invalid otherwise.
	Balancer netip.Addr
}

// Take returns the connection and points the spare descriptors at
// /dev/null (systemd's fd 3 is closed), so the client sees the close when
// the session ends rather than when the process exits. Stderr is replaced
// only when it is a socket (then it is the client); a terminal or log file
// stays for messages.
func Take() (*Conn, error) {
	fd, via := 0, "inetd"
	// Files checks LISTEN_PID against our pid and unsets the variables, so
	// a program we start never mistakes fd 3 for its own.
	activated := activation.Files(true)
	// Closed on return, on every path: a collected *os.File would close
	// its descriptor whenever the collector ran, by then perhaps another
	// file's. The connection lives on as our duplicate.
	defer func() {
		for _, f := range activated {
			f.Close()
		}
	}()
	if len(activated) >= 1 {
		fd, via = 3, "socket-activation"
	}

	if !isSocket(fd) {
		if fd == 3 {
			return nil, errors.New("launcher: LISTEN_FDS says fd 3, but fd 3 is not a socket")
		}
		return &Conn{Conn: newPipeConn(), Local: true, Via: "pipe"}, nil
	}
	// Work on a duplicate: the original stays open until /dev/null
	// replaces it, so /dev/null cannot land on its number.
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("launcher: dup fd %d: %w", fd, err)
	}
	f := os.NewFile(uintptr(dup), "connection")
	nc, err := net.FileConn(f) // dups again
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("launcher: fd %d: %w", fd, err)
	}
	c := &Conn{Conn: nc, Via: via}
	switch a := nc.RemoteAddr().(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		c.Peer = ap.Addr().Unmap()
	case *net.UnixAddr:
		c.Local = true
	default:
		nc.Close()
		return nil, fmt.Errorf("launcher: fd %d: unsupported peer %v", fd, nc.RemoteAddr())
	}
	if err := nullFds(); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func isSocket(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
}

func nullFds() error {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("launcher: open /dev/null: %w", err)
	}
	defer unix.Close(null)
	fds := []int{0, 1}
	if isSocket(2) {
		fds = append(fds, 2)
	}
	for _, fd := range fds {
		if fd == null {
			continue
		}
		if err := unix.Dup3(null, fd, 0); err != nil {
			return fmt.Errorf("launcher: dup /dev/null to fd %d: %w", fd, err)
		}
	}
	return nil
}

// pipeConn is stdin and stdout as a net.Conn, for local submission.
type pipeConn struct {
	r, w *os.File
}

func newPipeConn() *pipeConn { return &pipeConn{r: os.Stdin, w: os.Stdout} }

// Read reports a read after Close as net.ErrClosed, as a socket does:
// go-smtp takes that for the end of the session, and os.ErrClosed for an
// error worth logging.
func (p *pipeConn) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	}
	return n, err
}

func (p *pipeConn) Write(b []byte) (int, error) { return p.w.Write(b) }

// Close closes stdout so the local client reads EOF now.
func (p *pipeConn) Close() error {
	p.r.Close()
	return p.w.Close()
}
func (p *pipeConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr { return pipeAddr{} }

// Deadlines on a blocking pipe are not possible; the session's hard alarm
// bounds a stuck local client instead.
func (p *pipeConn) SetDeadline(t time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(t time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(t time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "local" }
