package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// TestImplicitTLSBehindHAProxy: on port 465 the client's TLS hello follows
// the PROXY header at once (HAProxy forwards it as it comes), so it may be
// read with the header: the handshake must still see every byte of it.
// HAProxy's LOCAL health check is answered in plain text before any TLS.
func TestImplicitTLSBehindHAProxy(t *testing.T) {
	env := proxiedEnv(t)
	ca := testenv.NewCA(t, env.Dir)
	_, certPEM, keyPEM := ca.Leaf(t, env.Hostname)
	cert, key := filepath.Join(env.Dir, "cert.pem"), filepath.Join(env.Dir, "key.pem")
	os.WriteFile(cert, certPEM, 0o644)
	os.WriteFile(key, keyPEM, 0o644)
	env.Extra["tls"] = fmt.Sprintf("cert_file = %q\nkey_file = %q\nimplicit = true", cert, key)
	env.WriteConfig()
	smtpAddr := env.SocketActivate()
	front := net.JoinHostPort(frontIP, strings.Split(testenv.FreePort(t), ":")[1])
	h := startHAProxy(t, env.Dir, front, 2, backend{"node", smtpAddr})
	h.waitChecked(t, "node")

	for range 3 {
		raw, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(relayIP)}, Timeout: 5 * time.Second}).Dial("tcp", front)
		if err != nil {
			t.Fatal(err)
		}
		c := tls.Client(raw, &tls.Config{RootCAs: ca.Pool, ServerName: env.Hostname})
		c.SetDeadline(time.Now().Add(15 * time.Second))
		d := &testenv.Dialogue{T: t, Conn: c, R: bufio.NewReader(c)}
		d.Expect(220)
		d.Cmd("EHLO client.test", 250)
		d.Cmd("QUIT", 221)
		c.Close()
	}
	waitLog(t, env, ": disconnect ", "peer="+relayIP)
	if n := len(logLines(env, ": connect ", "peer="+relayIP, "relay=true")); n != 3 {
		t.Errorf("want 3 TLS sessions from %s in the log, got %d:\n%s", relayIP, n, env.Log())
	}
	if l := logLines(env, "stage=tls"); len(l) > 0 {
		t.Errorf("TLS failures:\n%s", strings.Join(l, "\n"))
	}
	if s := h.waitChecked(t, "node"); s["chkfail"] != "0" {
		t.Errorf("haproxy's checks of the TLS node failed %s times (%s)", s["chkfail"], s["last_chk"])
	}
}
