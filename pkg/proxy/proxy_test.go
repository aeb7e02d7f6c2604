package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"smtp-bs/internal/testenv"
)

func v2(t *testing.T, cmd proxyproto.ProtocolVersionAndCommand, src, dst string, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	h.Command = cmd
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sslTLV(t *testing.T) proxyproto.TLV {
	t.Helper()
	tlv, err := tlvparse.PP2SSL{
		Client: tlvparse.PP2_BITFIELD_CLIENT_SSL,
		TLV:    []proxyproto.TLV{{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte("TLSv1.3")}},
	}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return tlv
}

// The client's bytes sent in the same segment as the header (a pipelining
// client, a TLS ClientHello) are read after it, not lost in the buffer.
func TestReadKeepsWhatFollowsTheHeader(t *testing.T) {
	cases := []struct {
		name    string
		header  []byte
		version int
		client  string
		server  string
		tls     string
	}{
		{"v1 TCP4", []byte("PROXY TCP4 127.0.0.7 127.0.0.1 40000 25\r\n"), 1, "127.0.0.7:40000", "127.0.0.1:25", ""},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 587\r\n"), 1, "[2001:db8::7]:40000", "[2001:db8::1]:587", ""},
		{"v2 TCP4", v2(t, proxyproto.PROXY, "192.0.2.7:40000", "198.51.100.1:25"), 2, "192.0.2.7:40000", "198.51.100.1:25", ""},
		{"v2 v4-mapped", v2(t, proxyproto.PROXY, "[::ffff:192.0.2.7]:40000", "[2001:db8::1]:25"), 2, "192.0.2.7:40000", "[2001:db8::1]:25", ""},
		{"v2 TLS TLV", v2(t, proxyproto.PROXY, "192.0.2.8:1234", "198.51.100.1:465", sslTLV(t)), 2, "192.0.2.8:1234", "198.51.100.1:465", "TLSv1.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := testenv.TCPPair(t)
			rest := "EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n"
			if _, err := cli.Write(append(append([]byte{}, tc.header...), rest...)); err != nil {
				t.Fatal(err)
			}
			cli.(*net.TCPConn).CloseWrite()
			c, h, err := Read(srv, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != tc.version || h.Health || h.Client.String() != tc.client || h.Server.String() != tc.server || h.TLS != tc.tls {
				t.Fatalf("header %+v, want v%d client %s server %s tls %q", h, tc.version, tc.client, tc.server, tc.tls)
			}
			if c.RemoteAddr().String() != tc.client || c.LocalAddr().String() != tc.server {
				t.Errorf("addrs %v -> %v, want %s -> %s", c.RemoteAddr(), c.LocalAddr(), tc.client, tc.server)
			}
			if c.Buffered() == 0 {
				t.Errorf("Buffered() = 0, yet the pipelined commands came with the header")
			}
			got, err := io.ReadAll(c)
			if err != nil || string(got) != rest {
				t.Fatalf("after the header read %q, %v; want %q", got, err, rest)
			}
		})
	}
}

func TestReadHealthChecks(t *testing.T) {
	for name, hdr := range map[string][]byte{
		"v2 LOCAL":    v2(t, proxyproto.LOCAL, "127.0.0.1:1", "127.0.0.1:2"),
		"v1 UNKNOWN":  []byte("PROXY UNKNOWN\r\n"),
		"v1 UNKNOWN+": []byte("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"),
	} {
		t.Run(name, func(t *testing.T) {
			srv, cli := testenv.TCPPair(t)
			cli.Write(hdr)
			c, h, err := Read(srv, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if !h.Health || h.Client.IsValid() {
				t.Fatalf("header %+v, want a health check without a client", h)
			}
			// No client: the addresses stay the balancer's own.
			if c.RemoteAddr().String() != srv.RemoteAddr().String() {
				t.Errorf("RemoteAddr %v, want the balancer's %v", c.RemoteAddr(), srv.RemoteAddr())
			}
			go AnswerHealth(c, "mx.test", 5*time.Second)
			cli.Write([]byte("QUIT\r\n"))
			got, _ := io.ReadAll(cli)
			if want := "220 mx.test ESMTP\r\n221 2.0.0 mx.test Bye\r\n"; string(got) != want {
				t.Fatalf("health check read %q, want %q", got, want)
			}
		})
	}
}

func TestReadRefuses(t *testing.T) {
	udp := v2(t, proxyproto.PROXY, "192.0.2.7:40000", "198.51.100.1:25")
	udp[13] = byte(proxyproto.UDPv4)
	cases := []struct {
		name     string
		in       string
		noHeader bool
	}{
		{"SMTP instead", "EHLO client.example\r\n", true},
		{"HTTP instead", "GET / HTTP/1.0\r\n\r\n", true},
		{"v1 bad address", "PROXY TCP4 999.0.0.1 127.0.0.1 1 25\r\n", false},
		{"v1 family mismatch", "PROXY TCP4 ::1 127.0.0.1 1 25\r\n", false},
		{"v1 no CRLF", "PROXY TCP4 127.0.0.7 127.0.0.1 40000 25" + strings.Repeat(" ", 200), false},
		{"v1 unspecified client", "PROXY TCP4 0.0.0.0 127.0.0.1 40000 25\r\n", false},
		{"v2 UDP", string(udp), false},
		{"v2 truncated", string(v2(t, proxyproto.PROXY, "192.0.2.7:40000", "198.51.100.1:25")[:20]), false},
		{"empty", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := testenv.TCPPair(t)
			cli.Write([]byte(tc.in))
			cli.(*net.TCPConn).CloseWrite()
			c, h, err := Read(srv, 5*time.Second)
			if err == nil {
				t.Fatalf("read %q as a header: %+v (conn %v)", tc.in, h, c.RemoteAddr())
			}
			if errors.Is(err, ErrNoHeader) != tc.noHeader {
				t.Errorf("err %v: ErrNoHeader = %v, want %v", err, !tc.noHeader, tc.noHeader)
			}
		})
	}
}

// A peer that sends nothing gets no session: the deadline ends the wait.
func TestReadSilentPeer(t *testing.T) {
	srv, _ := testenv.TCPPair(t)
	_, _, err := Read(srv, 50*time.Millisecond)
	if !errors.Is(err, ErrNoHeader) || !strings.Contains(err.Error(), "within") {
		t.Fatalf("silent peer: %v, want ErrNoHeader within the timeout", err)
	}
}
