package checks

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/milter"
)

// signer is Debian's OpenDKIM, signing for one domain with a key made by
// opendkim-genkey; sign runs a message through it over the milter
// protocol (pkg/milter), as smtp-bs's own milter stage would.
type signer struct {
	socket string
	record string // the TXT record's text, for the test's DNS server
}

func startSigner(t *testing.T, domain, selector string) *signer {
	t.Helper()
	bin := testenv.Need(t, "opendkim")
	genkey := testenv.Need(t, "opendkim-genkey")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if out, err := exec.Command(genkey, "-D", dir, "-d", domain, "-s", selector).CombinedOutput(); err != nil {
		t.Fatalf("opendkim-genkey: %v\n%s", err, out)
	}
	txt, err := os.ReadFile(filepath.Join(dir, selector+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The zone-file form: ( "v=DKIM1; ..." "p=..." ) ; comment
	var rec strings.Builder
	for _, part := range strings.Split(string(txt), `"`)[1:] {
		if !strings.ContainsAny(part, "()\n") || strings.HasPrefix(part, "v=") || strings.HasPrefix(part, "p=") {
			rec.WriteString(part)
		}
	}
	s := &signer{socket: filepath.Join(dir, "opendkim.sock"), record: strings.TrimSpace(rec.String())}
	if !strings.Contains(s.record, "p=") {
		t.Fatalf("no key in %s", txt)
	}
	conf := filepath.Join(dir, "opendkim.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`Syslog no
Background no
Mode s
Domain %s
Selector %s
KeyFile %s
RequireSafeKeys false
Canonicalization relaxed/simple
Socket local:%s
UMask 000
`, domain, selector, filepath.Join(dir, selector+".private"), s.socket)), 0o644)
	testenv.Start(t, bin, "-f", "-x", conf)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(s.socket); err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("opendkim made no socket %s", s.socket)
		}
	}
}

// sign returns msg with OpenDKIM's DKIM-Signature added.
func (s *signer) sign(t *testing.T, from, msg string) string {
	t.Helper()
	cfg := []config.Milter{{Name: "opendkim", Socket: "unix:" + s.socket, ConnectTimeout: config.Duration{Duration: 10 * time.Second},
		Timeout: config.Duration{Duration: 10 * time.Second}, DefaultAction: "tempfail"}}
	ms := milter.Open(cfg, milter.Peer{Addr: netip.MustParseAddr("127.0.0.1"), Hostname: "signer.test"}, maillog.Discard())
	defer ms.Close()
	if v := ms.Mail(milter.MailInfo{Helo: "localhost", From: from}); v.Final() {
		t.Fatalf("opendkim at MAIL: %+v", v)
	}
	if v := ms.Rcpt("b@mx.test.example", nil); v.Final() {
		t.Fatalf("opendkim at RCPT: %+v", v)
	}
	res, err := ms.Content(strings.NewReader(msg), int64(len(msg)), "TESTID", milter.Envelope{From: from, Rcpts: []string{"b@mx.test.example"}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	res.WriteTo(&b)
	out := b.String()
	if !strings.Contains(out, "DKIM-Signature:") {
		t.Fatalf("opendkim did not sign (%+v):\n%s", res.Verdict, out)
	}
	return out
}
