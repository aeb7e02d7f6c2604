package launcher

import (
	"net/netip"
	"time"

	"smtp-bs/pkg/proxy"
)

// Unproxy reads the PROXY header from a trusted peer (a load balancer)
// and makes the connection the client's: Conn, Peer, RemoteAddr and
// LocalAddr then name the client and the address it connected to, so
// tcpwrap, relay_networks, the Received header and the logs judge the
// client, never the balancer; Balancer keeps the balancer's address.
//
// It returns nil and changes nothing for a local connection or a peer
// that is not trusted: such a peer is served as itself, and a header it may
// send is never read as one (it reaches go-smtp as a command and is
// refused). For a trusted peer without a valid header within timeout it
// returns the error, and the caller must drop the connection.
func (c *Conn) Unproxy(trusted func(netip.Addr) bool, timeout time.Duration) (*proxy.Header, error) {
	if c.Local || !c.Peer.IsValid() || !trusted(c.Peer) {
		return nil, nil
	}
	pc, h, err := proxy.Read(c.Conn, timeout)
	if err != nil {
		return nil, err
	}
	c.Balancer = c.Peer
	c.Conn = pc
	if !h.Health {
		c.Peer = h.Client.Addr()
	}
	return h, nil
}
