package dnstest

import "net"

func newUDP() (net.PacketConn, error) { return net.ListenPacket("udp", "127.0.0.1:0") }

// newTCP listens on the UDP socket's port, so one address serves both (a
// truncated answer is asked again over TCP); another port if it is taken.
func newTCP(udpAddr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", udpAddr)
	if err != nil {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	return ln, nil
}
