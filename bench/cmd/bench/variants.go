package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// The go-smtp commit whose DATA reader smtp-bs-p10 leaves out (patch 11
// in third_party/go-smtp/PATCHES): smtp-bs-p10 is built with data.go as it
// was before it, so the patch's effect is measured alone, side by side.
const (
	patch11    = "2b6f70c"
	goSmtpData = "third_party/go-smtp/data.go"
	p10Name    = "smtp-bs-p10"
	spfSender  = "client.bench.example" // smtp-source's -f domain
	dnsblZone  = "bl.bench.example"
	rcptDomain = "remote.example" // smtp-source's -t domain
)

// abFlag collects -ab NAME=BINARY[,TOMLFILE].
type abFlag []abHandler

type abHandler struct{ name, bin, toml string }

func (a abFlag) has(name string) bool {
	for _, h := range a {
		if h.name == name {
			return true
		}
	}
	return false
}

func (a *abFlag) String() string { return fmt.Sprint(*a) }

func (a *abFlag) Set(v string) error {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" || rest == "" {
		return fmt.Errorf("want NAME=BINARY[,TOMLFILE], got %q", v)
	}
	bin, toml, _ := strings.Cut(rest, ",")
	bin, _ = filepath.Abs(bin)
	if toml != "" {
		toml, _ = filepath.Abs(toml)
	}
	*a = append(*a, abHandler{name: name, bin: bin, toml: toml})
	return nil
}

// buildP10 writes data.go as it was before patch 11 to a temporary file
// and builds smtp-bs over it with go build -overlay, into bin. A reason
// not to is returned as note (git missing, data.go changed since the
// patch: the overlay would revert those changes too); the caller prints
// it and runs without smtp-bs-p10.
func buildP10(repo, src, bin string) (note string, err error) {
	out := p10Bin(bin)
	os.Remove(out) // never measure a stale one
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	if _, err := exec.LookPath("git"); err != nil {
		return "git is not installed: no smtp-bs-p10 (go-smtp patch 11 alone)", nil
	}
	last, err := exec.Command("git", "-C", repo, "log", "-1", "--format=%H", "--", goSmtpData).Output()
	if err != nil {
		return fmt.Sprintf("git log %s: %v: no smtp-bs-p10", goSmtpData, err), nil
	}
	if !strings.HasPrefix(strings.TrimSpace(string(last)), patch11) {
		return fmt.Sprintf("%s changed after patch 11 (%s, last %.7s): the overlay would revert that too; no smtp-bs-p10",
			goSmtpData, patch11, last), nil
	}
	old, err := exec.Command("git", "-C", repo, "show", patch11+"^:"+goSmtpData).Output()
	if err != nil {
		return fmt.Sprintf("git show %s^:%s: %v: no smtp-bs-p10", patch11, goSmtpData, err), nil
	}
	tmp, err := os.MkdirTemp("", "bench-p10-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	data := filepath.Join(tmp, "data.go")
	if err := os.WriteFile(data, old, 0o644); err != nil {
		return "", err
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(src, goSmtpData): data}})
	ovPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return "", err
	}
	c := exec.Command("go", "build", "-overlay", ovPath, "-o", out, "./cmd/smtp-bs")
	c.Dir = src
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := c.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -overlay (data.go before patch 11) ./cmd/smtp-bs: %v\n%s", err, o)
	}
	return "", nil
}

// p10Bin is where buildP10 puts smtp-bs-p10: named smtp-bs, as its
// program name is its syslog tag and hosts.allow daemon name.
func p10Bin(bin string) string { return filepath.Join(bin, p10Name, "smtp-bs") }

// selfSigned writes an RSA-2048 self-signed certificate for benchHost and
// its key into dir: cert.pem 0644, key.pem root:mail 0640, as README
// says to install them.
func selfSigned(dir string, gid int) (cert, key string, err error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: benchHost},
		DNSNames:     []string{benchHost},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o640); err != nil {
		return "", "", err
	}
	if err := os.Chown(key, 0, gid); err != nil {
		return "", "", err
	}
	return cert, key, os.Chmod(key, 0o640)
}

// dnsServer answers smtp-bs-checks on 127.0.0.1:53 (this network
// namespace's own): every DNSBL query NXDOMAIN (the client is not
// listed), the sender domain's TXT its SPF record, which passes
// 127.0.0.1. It counts what it answered, so the report can show the
// checks ran.
type dnsServer struct {
	addr    string
	queries atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
}

// startDNS serves on addr, UDP and TCP ("127.0.0.1:53" in the bench's
// network namespace; port 0 picks one, the same for both).
func startDNS(addr string) (*dnsServer, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dns server: %w", err)
	}
	s := &dnsServer{addr: pc.LocalAddr().String()}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dns server: %w", err)
	}
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: ln, Handler: s}
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	return s, nil
}

func (s *dnsServer) stop() {
	s.udp.Shutdown()
	s.tcp.Shutdown()
}

func (s *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg).SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		m.Answer, m.Rcode = answer(req.Question[0])
	} else {
		m.Rcode = dns.RcodeFormatError
	}
	w.WriteMsg(m)
}

// answer is the bench's whole zone: the sender domain exists and has its
// SPF record; every other name (a DNSBL query among them) does not exist.
func answer(q dns.Question) ([]dns.RR, int) {
	if !strings.EqualFold(q.Name, spfSender+".") {
		return nil, dns.RcodeNameError
	}
	if q.Qtype != dns.TypeTXT {
		return nil, dns.RcodeSuccess
	}
	return []dns.RR{&dns.TXT{
		Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300},
		Txt: []string{"v=spf1 ip4:127.0.0.1 -all"},
	}}, dns.RcodeSuccess
}
