package launcher

import (
	"bufio"
	"net/netip"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

func in(prefixes ...string) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		for _, p := range prefixes {
			if netip.MustParsePrefix(p).Contains(a) {
				return true
			}
		}
		return false
	}
}

const hdr = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n"

func TestUnproxyTrusted(t *testing.T) {
	srv, cli := testenv.TCPPair(t)
	c := &Conn{Conn: srv, Peer: netip.MustParseAddr("127.0.0.1"), Via: "inetd"}
	cli.Write([]byte(hdr + "EHLO x\r\n"))
	h, err := c.Unproxy(in("127.0.0.0/8"), 5*time.Second)
	if err != nil || h == nil {
		t.Fatalf("Unproxy: %v, %v", h, err)
	}
	if c.Peer.String() != "192.0.2.7" || c.Balancer.String() != "127.0.0.1" {
		t.Errorf("peer %v balancer %v, want 192.0.2.7 behind 127.0.0.1", c.Peer, c.Balancer)
	}
	if c.RemoteAddr().String() != "192.0.2.7:40000" || c.LocalAddr().String() != "198.51.100.1:25" {
		t.Errorf("addrs %v -> %v", c.RemoteAddr(), c.LocalAddr())
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line != "EHLO x\r\n" {
		t.Errorf("after the header read %q", line)
	}
}

// A peer outside the trusted networks is served as itself: its header is
// not read, so it reaches the session as the first command (and is
// refused there), and the peer stays the real one.
func TestUnproxyUntrusted(t *testing.T) {
	srv, cli := testenv.TCPPair(t)
	c := &Conn{Conn: srv, Peer: netip.MustParseAddr("127.0.0.1")}
	cli.Write([]byte(hdr))
	h, err := c.Unproxy(in("10.0.0.0/8"), 5*time.Second)
	if h != nil || err != nil {
		t.Fatalf("untrusted peer: Unproxy = %v, %v; want nothing", h, err)
	}
	if c.Peer.String() != "127.0.0.1" || c.Balancer.IsValid() || c.Conn != srv {
		t.Errorf("untrusted peer changed the connection: peer %v balancer %v", c.Peer, c.Balancer)
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line != hdr {
		t.Errorf("untrusted header was consumed: read %q", line)
	}
	// No trusted networks at all: the same.
	if h, err := c.Unproxy(in(), time.Second); h != nil || err != nil {
		t.Errorf("no trusted networks: %v, %v", h, err)
	}
}

func TestUnproxyTrustedWithoutHeader(t *testing.T) {
	srv, cli := testenv.TCPPair(t)
	c := &Conn{Conn: srv, Peer: netip.MustParseAddr("127.0.0.1")}
	cli.Write([]byte("EHLO x\r\n"))
	h, err := c.Unproxy(in("127.0.0.1/32"), 5*time.Second)
	if err == nil {
		t.Fatalf("trusted peer without a header: %+v, want an error", h)
	}
	if c.Peer.String() != "127.0.0.1" {
		t.Errorf("peer changed to %v", c.Peer)
	}
}
