package proxy

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"smtp-bs/internal/testenv"
)

// dialAsBalancer connects to smtp-bs from the trusted balancer's address
// and sends header first, as a balancer would.
func dialAsBalancer(t *testing.T, addr string, header *proxyproto.Header) *testenv.Dialogue {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(balancer)}, Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := header.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	return &testenv.Dialogue{T: t, Conn: c, R: bufio.NewReader(c)}
}

// TestBalancerClaims: a v2 header saying the balancer terminated TLS for
// the client is recorded in the log, and grants nothing (a client outside
// the relay network still may not relay); a LOCAL connection (a health
// check) gets 220 and 221 and leaves no line in the log.
func TestBalancerClaims(t *testing.T) {
	env := proxiedEnv(t)
	addr := env.SocketActivate()

	h := proxyproto.HeaderProxyFromAddrs(2,
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(atFrontIP+":40000")),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(frontIP+":25")))
	ssl, err := tlvparse.PP2SSL{
		Client: tlvparse.PP2_BITFIELD_CLIENT_SSL | tlvparse.PP2_BITFIELD_CLIENT_CERT_CONN,
		TLV:    []proxyproto.TLV{{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte("TLSv1.3")}},
	}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetTLVs([]proxyproto.TLV{ssl}); err != nil {
		t.Fatal(err)
	}
	d := dialAsBalancer(t, addr, h)
	d.Expect(220)
	d.Cmd("EHLO client.test", 250)
	d.Cmd("MAIL FROM:<sender@client.test>", 250)
	d.Cmd("RCPT TO:<someone@elsewhere.example>", 554)
	d.Cmd("QUIT", 221)
	waitLog(t, env, ": disconnect ", "peer="+atFrontIP)
	if len(logLines(env, ": proxy ", "peer="+atFrontIP, "version=2", "balancer_tls=TLSv1.3")) != 1 {
		t.Errorf("the balancer's TLS is not recorded:\n%s", env.Log())
	}
	if len(logLines(env, ": connect ", "peer="+atFrontIP, "relay=false")) != 1 {
		t.Errorf("want relay=false for %s despite the TLS claim:\n%s", atFrontIP, env.Log())
	}

	before := env.Log()
	local := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	for range 3 {
		d = dialAsBalancer(t, addr, local)
		if text := d.Expect(220); !strings.Contains(text, env.Hostname) {
			t.Errorf("health check greeting %q", text)
		}
		d.Cmd("QUIT", 221)
		d.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := d.R.ReadByte(); err == nil {
			t.Error("the health check's connection stayed open after 221")
		}
	}
	if after := env.Log(); after != before {
		t.Errorf("health checks logged:\n%s", strings.TrimPrefix(after, before))
	}
}
