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

// servePTR answers PTR queries on pc with one record naming name.
func servePTR(pc net.PacketConn, name string) { serveDNS(pc, name, netip.Addr{}) }

// TestGoResolverParanoidMismatch: through Go's own resolver and a real
// DNS server on 127.0.0.1, a client whose PTR names a host whose A record
// is another address matches PARANOID (denied); the same PTR with a
// matching A record does not (allowed).
func TestGoResolverParanoidMismatch(t *testing.T) {
	for _, c := range []struct {
		a     string
		allow bool
	}{{"192.0.2.99", false}, {"192.0.2.1", true}} {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go serveDNS(pc, "mx.example.org", netip.MustParseAddr(c.a))
		res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		}}
		if addrs, err := res.LookupHost(context.Background(), "mx.example.org"); err != nil || len(addrs) != 1 || addrs[0] != c.a {
			t.Fatalf("the test server's A record: %q, %v", addrs, err)
		}
		o := writeRules(t, "", "ALL: PARANOID\n")
		o.Resolver = res
		o.LookupTimeout = 5 * time.Second
		v, err := Check(context.Background(), "smtp-bs", Client{Addr: netip.MustParseAddr("192.0.2.1")}, o)
		if err != nil || v.Allow != c.allow {
			t.Errorf("PTR mx.example.org, A %s, under ALL: PARANOID: %+v, %v; want allow=%v", c.a, v, err, c.allow)
		}
	}
}

// serveDNS answers PTR queries with name and A queries with a (when
// valid); anything else gets an empty answer.
func serveDNS(pc net.PacketConn, name string, a netip.Addr) {
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
		end := 12
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		end += 5
		if end > len(q) {
			continue
		}
		qtype := binary.BigEndian.Uint16(q[end-4:])
		var rtype uint16
		var rdata []byte
		switch qtype {
		case 12:
			rtype = 12
			for _, l := range strings.Split(name, ".") {
				rdata = append(append(rdata, byte(len(l))), l...)
			}
			rdata = append(rdata, 0)
		case 1:
			rtype, rdata = 1, a.AsSlice()
		}
		out := append([]byte(nil), q[:2]...)
		answers := byte(0)
		if rdata != nil {
			answers = 1
		}
		out = append(out, 0x81, 0x80, 0, 1, 0, answers, 0, 0, 0, 0)
		out = append(out, q[12:end]...)
		if rdata != nil {
			out = append(out, 0xc0, 12)
			out = binary.BigEndian.AppendUint16(out, rtype)
			out = append(out, 0, 1, 0, 0, 0, 60)
			out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
			out = append(out, rdata...)
		}
		pc.WriteTo(out, from)
	}
}
