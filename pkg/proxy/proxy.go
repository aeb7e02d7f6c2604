// Package proxy reads the PROXY protocol header (HAProxy's published
// spec, versions 1 and 2) that a TCP load balancer sends ahead of the
// client's first byte, and gives back the connection as the client made
// it: its address is the client's, its local address is the one the
// client connected to, and not one byte the client sent after the header
// is lost.
//
// It knows nothing of trust: the caller asks for a header only from a
// balancer it trusts (launcher.Conn.Unproxy), because a header is an
// assertion anyone can type. The parsing is github.com/pires/go-proxyproto's
// (Read on a bufio.Reader); its listener model does not fit a process that
// is handed one connection, so the deadline and the buffered bytes are
// handled here.
package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

// Header is what a trusted balancer said about the connection.
type Header struct {
	Version int // 1 or 2
	// Health is true for a connection the balancer made itself, with no
	// client behind it: v2's LOCAL command (its health checks) or v1's
	// UNKNOWN. There is no client address to judge, so the caller answers
	// it without a session.
	Health bool
	// Client is the address the client connected from; Server the address
	// (on the balancer) it connected to, which tcpwrap's daemon@host
	// forms match.
	Client, Server netip.AddrPort
	// TLS is the TLS version (or "TLS" when the balancer names none) when a
	// v2 PP2_TYPE_SSL TLV says the balancer terminated TLS for the client;
	// empty otherwise. It is a record of what the balancer claims, never a
	// grant: relaying and AUTH do not look at it.
	TLS string
}

// ErrNoHeader is returned when a connection that must start with a header
// starts with something else, or sends nothing in time.
var ErrNoHeader = errors.New("no PROXY protocol header")

// bufSize is the read buffer: the parser peeks at most 12 bytes and reads
// the rest (up to v2's 64 KiB) through it, so it only sizes each read.
const bufSize = 512

// Read reads the header from conn within timeout and returns conn
// positioned right after it. A connection that does not start with a
// valid header in time is an error (wrapping ErrNoHeader when there was no
// header at all); the caller must then drop it, never serve it under the
// balancer's address.
func Read(conn net.Conn, timeout time.Duration) (*Conn, *Header, error) {
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	r := bufio.NewReaderSize(conn, bufSize)
	h, err := parse(r)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil, fmt.Errorf("proxy: %w within %v", ErrNoHeader, timeout)
		}
		return nil, nil, err
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, fmt.Errorf("proxy: %w", err)
	}
	c := &Conn{Conn: conn, r: r, remote: conn.RemoteAddr(), local: conn.LocalAddr()}
	if !h.Health {
		c.remote, c.local = net.TCPAddrFromAddrPort(h.Client), net.TCPAddrFromAddrPort(h.Server)
	}
	return c, h, nil
}

// parse reads one header from r, consuming exactly its bytes.
func parse(r *bufio.Reader) (*Header, error) {
	ph, err := proxyproto.Read(r)
	if errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		return nil, fmt.Errorf("proxy: %w", ErrNoHeader)
	}
	if err != nil {
		return nil, fmt.Errorf("proxy: bad header: %w", err)
	}
	h := &Header{Version: int(ph.Version)}
	if ph.Command.IsLocal() || ph.TransportProtocol.IsUnspec() {
		h.Health = true
		return h, nil
	}
	if !ph.TransportProtocol.IsStream() || ph.TransportProtocol.IsUnix() {
		return nil, fmt.Errorf("proxy: header for a %v connection, want TCP over IPv4 or IPv6", ph.TransportProtocol)
	}
	src, dst, ok := ph.TCPAddrs()
	if !ok {
		return nil, fmt.Errorf("proxy: header without TCP addresses")
	}
	h.Client = unmap(src.AddrPort())
	h.Server = unmap(dst.AddrPort())
	if !h.Client.Addr().IsValid() || h.Client.Addr().IsUnspecified() {
		return nil, fmt.Errorf("proxy: header names no client address (%v)", src)
	}
	if ph.Version == 2 {
		tlvs, err := ph.TLVs()
		if err != nil {
			return nil, fmt.Errorf("proxy: bad TLVs: %w", err)
		}
		h.TLS = clientTLS(tlvs)
	}
	return h, nil
}

// clientTLS reads the PP2_TYPE_SSL TLV (PROXY protocol v2, 2.2.5): "" when
// the client did not use TLS to the balancer, else its version ("TLS"
// when not given). It reads the TLV itself: go-proxyproto's tlvparse
// compiles a regexp at package init, which every smtp-bs process paid.
func clientTLS(tlvs []proxyproto.TLV) string {
	const (
		typeSSL          = 0x20
		subtypeVersion   = 0x21
		clientSSL        = 0x01
		sslHeaderLen     = 5 // client (1 octet), verify (4)
		subTLVHeaderSize = 3 // type (1), length (2)
	)
	for _, t := range tlvs {
		if t.Type != typeSSL || len(t.Value) < sslHeaderLen || t.Value[0]&clientSSL == 0 {
			continue
		}
		for sub := t.Value[sslHeaderLen:]; len(sub) >= subTLVHeaderSize; {
			n := int(sub[1])<<8 | int(sub[2])
			if len(sub) < subTLVHeaderSize+n {
				break
			}
			if sub[0] == subtypeVersion && n > 0 {
				return string(sub[subTLVHeaderSize : subTLVHeaderSize+n])
			}
			sub = sub[subTLVHeaderSize+n:]
		}
		return "TLS"
	}
	return ""
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Conn is the client's connection after the header: reads come first from
// what was buffered while reading the header (a client may pipeline, and
// a TLS client sends its hello at once), then from the socket.
type Conn struct {
	net.Conn
	r             *bufio.Reader
	remote, local net.Addr
}

func (c *Conn) Read(b []byte) (int, error) { return c.r.Read(b) }

// RemoteAddr is the client's address from the header.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr is the address the client connected to, from the header.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// Buffered is how many of the client's bytes were read with the header
// and wait here rather than in the socket: a check for input that looks
// only at the socket (the early-talker check) must look here too.
func (c *Conn) Buffered() int { return c.r.Buffered() }

// CloseWrite half-closes the socket, as *net.TCPConn does.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// SyscallConn is the socket's, for checks that peek at it.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.New("proxy: not a socket")
}
