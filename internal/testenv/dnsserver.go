package testenv

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSServer is an authoritative-looking recursive resolver on 127.0.0.1
// (UDP and TCP, one port) that answers from records the test adds. Names
// under a domain the test calls signed get the AD bit, as a validating
// resolver sets it for a DNSSEC-signed zone; no signatures are made.
type DNSServer struct {
	Addr string

	mu     sync.Mutex
	rrs    []dns.RR
	signed []string
	fail   map[string]bool // "name/TYPE" answered SERVFAIL
}

// NewDNSServer starts one; it stops when the test ends.
func NewDNSServer(t testing.TB) *DNSServer {
	t.Helper()
	s := &DNSServer{fail: map[string]bool{}}
	// One port for UDP and TCP: a free UDP port may be taken for TCP.
	var pc net.PacketConn
	var l net.Listener
	for i := 0; l == nil; i++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if i == 50 {
				t.Fatal(err)
			}
		}
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: l, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return s
}

// Add adds records in zone-file syntax ("mx.example.test. 300 IN A 127.0.0.1").
func (s *DNSServer) Add(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("DNS record %q: %v", r, err)
		}
		s.rrs = append(s.rrs, rr)
	}
}

// Sign marks domain and the names under it as signed (AD in answers).
func (s *DNSServer) Sign(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signed = append(s.signed, dns.Fqdn(strings.ToLower(domain)))
}

// ServFail makes queries for name of type qtype ("TLSA") fail.
func (s *DNSServer) ServFail(name, qtype string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[dns.Fqdn(strings.ToLower(name))+"/"+qtype] = true
}

func (s *DNSServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[name+"/"+dns.TypeToString[q.Qtype]] {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	exists := false
	for _, rr := range s.rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			exists = true
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	for _, d := range s.signed {
		if name == d || strings.HasSuffix(name, "."+d) {
			m.AuthenticatedData = true
		}
	}
	w.WriteMsg(m)
}

// Del removes the records of name of type qtype ("TXT").
func (s *DNSServer) Del(name, qtype string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = dns.Fqdn(strings.ToLower(name))
	kept := s.rrs[:0]
	for _, rr := range s.rrs {
		if !strings.EqualFold(rr.Header().Name, name) || dns.TypeToString[rr.Header().Rrtype] != qtype {
			kept = append(kept, rr)
		}
	}
	s.rrs = kept
}
