package milter

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// dkimPython finds a python3 that has Debian's dkim module (python3-dkim
// installs it for /usr/bin/python3, which a pyenv shim on PATH may hide).
// Under CI=true its absence fails the test.
func dkimPython(t *testing.T) string {
	t.Helper()
	cands := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		cands = append(cands, p)
	}
	for _, p := range cands {
		if exec.Command(p, "-c", "import dkim").Run() == nil {
			return p
		}
	}
	testenv.Missing(t, "no python3 with the dkim module", "python3-dkim")
	return ""
}

// startOpenDKIM runs Debian's opendkim in the foreground as a signer for
// client.example on a unix socket, with a key made here, and returns the
// socket and the key's DNS record.
func startOpenDKIM(t *testing.T) (socket, record string) {
	t.Helper()
	bin := testenv.Need(t, "opendkim")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "test.private")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	record = "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)
	sock := filepath.Join(dir, "opendkim.sock")
	conf := filepath.Join(dir, "opendkim.conf")
	// The simple single-key form; Canonicalization is OpenDKIM's default
	// (simple/simple), the strictest about what the milter is shown.
	os.WriteFile(conf, []byte(fmt.Sprintf(`Syslog no
Background no
Mode s
Domain client.example
Selector test
KeyFile %s
RequireSafeKeys false
Socket local:%s
UMask 000
`, keyFile, sock)), 0o644)
	testenv.Start(t, bin, "-f", "-x", conf)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("opendkim made no socket %s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "unix:" + sock, record
}

// TestOpenDKIM: OpenDKIM signs what smtp-bs accepts, the delivered copy
// verifies with python3-dkim and the test's key, and when a milter before
// it changes the message (header, body, envelope), OpenDKIM signs the
// changed message, as the next hop receives it.
func TestOpenDKIM(t *testing.T) {
	py := dkimPython(t)
	dkimSock, record := startOpenDKIM(t)
	scanSock, _ := startMilter(t, "tcp")
	e, sink, addr := env(t, milterTable("scan", scanSock)+milterTable("opendkim", dkimSock))

	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO client.example", 250)
	// A folded Subject and a To with more than one space after the colon:
	// simple canonicalization breaks unless the milter is shown the
	// header exactly.
	send(t, d, "sender@client.example", []string{"rcpt@remote.example"},
		message("plain\r\n\tand folded", "To:   spaced@remote.example\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n", "Signed body.\r\n\r\nSecond paragraph.\r\n"), 250)
	send(t, d, "sender@client.example", []string{"kept@remote.example", "removed@remote.example"},
		message("modify", "", "This body is replaced before signing.\r\n"), 250)
	d.Cmd("QUIT", 221)

	if out, code := e.Qrun("-once"); code != 0 {
		t.Fatalf("qrun -once: exit %d\n%s", code, out)
	}
	msgs := sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("delivered %d messages, want 2\n%s", len(msgs), e.Log())
	}
	txt := filepath.Join(t.TempDir(), "record.txt")
	os.WriteFile(txt, []byte(record), 0o644)
	for i, m := range msgs {
		data := string(m.Data)
		if !strings.Contains(data, "DKIM-Signature:") || !strings.Contains(data, "d=client.example") {
			t.Fatalf("message %d carries no DKIM-Signature for client.example:\n%s\nlog:\n%s", i, data, e.Log())
		}
		if !strings.HasPrefix(data, "Received: from client.example") {
			t.Errorf("message %d does not start with our Received header:\n%.200s", i, data)
		}
		f := filepath.Join(t.TempDir(), "msg.eml")
		os.WriteFile(f, m.Data, 0o644)
		out, err := exec.Command(py, "testdata/dkimverify.py", f, "test", "client.example", txt).CombinedOutput()
		if err != nil {
			t.Errorf("message %d: the DKIM signature does not verify: %v\n%s\n%s", i, err, out, data)
		}
		if strings.Contains(data, "Second paragraph") {
			t.Logf("%s", out)
			// The verifier is no rubber stamp: one changed byte fails it.
			os.WriteFile(f, []byte(strings.Replace(data, "Second paragraph", "Second paragraph!", 1)), 0o644)
			if out, err := exec.Command(py, "testdata/dkimverify.py", f, "test", "client.example", txt).CombinedOutput(); err == nil {
				t.Errorf("a changed body still verifies:\n%s", out)
			}
		}
	}
	changed := 0
	for _, m := range msgs {
		if body := string(m.Data); strings.Contains(body, "Replaced body.") && strings.Contains(body, "Subject: changed by the milter") {
			changed++
		}
	}
	if changed != 1 {
		t.Errorf("%d delivered messages were changed before signing, want 1", changed)
	}
}
