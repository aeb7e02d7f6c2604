package tcpwrap

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Go's own resolver, not the test one: a PTR answer that is numeric is
// dropped by the net package with an error that lookupName recognises by
// its text (the net package exports no value for it). This pins that
// text: if Go rewords it, the numeric PTR below gets past "ALL: PARANOID"
// again and this test fails.
func TestGoResolverNumericPTRIsParanoid(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go servePTR(pc, "192.0.2.9")
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}

	names, err := res.LookupAddr(context.Background(), "192.0.2.1")
	if !droppedInvalidNames(err) || len(names) != 0 {
		t.Fatalf("LookupAddr of a numeric PTR: %q, %v", names, err)
	}
	o := writeRules(t, "", "ALL: PARANOID\n")
	o.Resolver = res
	o.LookupTimeout = 5 * time.Second
	v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")}, o)
	if err != nil || v.Allow {
		t.Errorf("a numeric PTR under ALL: PARANOID: %+v, %v", v, err)
	}
}

// servePTR answers every DNS query on pc with one PTR record naming name.
func servePTR(pc net.PacketConn, name string) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if len(q) < 12 {
			continue
		}
		end := 12 // the question: its name, then type and class
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		end += 5
		if end > len(q) {
			continue
		}
		out := append([]byte(nil), q[:2]...)                  // the query's ID
		out = append(out, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0) // a response, 1 question, 1 answer
		out = append(out, q[12:end]...)
		out = append(out, 0xc0, 12, 0, 12, 0, 1, 0, 0, 0, 60) // the question's name, PTR, IN, TTL 60
		var rdata []byte
		for _, l := range strings.Split(name, ".") {
			rdata = append(append(rdata, byte(len(l))), l...)
		}
		rdata = append(rdata, 0)
		out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
		pc.WriteTo(out, from)
	}
}
