package dnstest

import (
	"fmt"
	"net"
)

// listen opens UDP and TCP on one port of 127.0.0.1, so one address serves
// both (a truncated answer is asked again over TCP at the same address): a
// free UDP port may be taken for TCP, so it tries other ports.
func listen() (net.PacketConn, net.Listener, error) {
	var last error
	for range 50 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("dnstest: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		last = err
	}
	return nil, nil, fmt.Errorf("dnstest: no port free for both UDP and TCP: %w", last)
}
