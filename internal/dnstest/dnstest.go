// Package dnstest is a DNS server on 127.0.0.1 for tests (miekg/dns), with
// records given as zone-file lines, and names that answer SERVFAIL or
// never answer at all. Tests point dnsclient.New at its Addr, so no test
// ever asks an outside resolver.
package dnstest

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server answers from its records: NXDOMAIN for a name it does not know,
// NOERROR with no answer for a known name without records of the type.
type Server struct {
	Addr string // ip:port (UDP and TCP)

	mu       sync.Mutex
	rrs      map[string][]dns.RR // by lower-case FQDN
	servfail map[string]bool
	silent   map[string]bool
	queries  atomic.Int64
	log      []string
}

// Start runs a server until the test ends. rrs are zone-file lines, e.g.
// "2.0.0.127.zen.test. A 127.0.0.2" or `example.org. TXT "v=spf1 -all"`.
func Start(t testing.TB, rrs ...string) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}, servfail: map[string]bool{}, silent: map[string]bool{}}
	s.Add(t, rrs...)
	pc, err := newUDP()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	ln, err := newTCP(s.Addr)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return s
}

// Add adds records.
func (s *Server) Add(t testing.TB, rrs ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range rrs {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("dnstest: %q: %v", line, err)
		}
		name := strings.ToLower(rr.Header().Name)
		s.rrs[name] = append(s.rrs[name], rr)
	}
}

// ServFail makes every query for name (a FQDN, with or without the dot)
// answer SERVFAIL.
func (s *Server) ServFail(name string) {
	s.mu.Lock()
	s.servfail[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Silent makes queries for name go unanswered: the client times out.
func (s *Server) Silent(name string) {
	s.mu.Lock()
	s.silent[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Queries is the number of queries received so far.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Log is the questions received so far, "TYPE name" each.
func (s *Server) Log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.log = append(s.log, dns.TypeToString[q.Qtype]+" "+name)
	silent, servfail := s.silent[name], s.servfail[name]
	rrs, known := s.rrs[name]
	s.mu.Unlock()
	switch {
	case silent:
		return
	case servfail:
		m.Rcode = dns.RcodeServerFailure
	case !known:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
	}
	w.WriteMsg(m)
}
