// Package dnstest is a DNS server on 127.0.0.1 for tests (miekg/dns), with
// records given as zone-file lines (added and deleted as the test goes),
// names that answer SERVFAIL (for every type or only some) or never answer
// at all, and domains whose answers carry the AD bit, as a validating
// resolver sets it for a DNSSEC-signed zone (no signatures are made). Tests
// point their resolvers at its Addr, so no test ever asks an outside one.
package dnstest

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// Server answers from its records: NXDOMAIN for a name it does not know
// (no records, or its last ones deleted), NOERROR with no answer for a known
// name without records of the type. Answers claim both AA and RA: Go's
// resolver takes a NOERROR without answers and without either for a lame
// referral, and tests use the server both as a zone's server and as the
// host's recursive resolver. Answers never carry EDNS and are never
// truncated: a client that asks again over TCP finds TCP on the same port.
type Server struct {
	Addr string // ip:port, one port for UDP and TCP

	mu       sync.Mutex
	rrs      map[string][]dns.RR // by lower-case FQDN, never an empty list
	servfail map[string]bool     // "name" for every type, "name/TYPE" for one
	silent   map[string]bool
	signed   []string // lower-case FQDNs
	queries  atomic.Int64
	log      []string
}

// Start runs a server until the test ends. rrs are zone-file lines, e.g.
// "2.0.0.127.zen.test. A 127.0.0.2" or `example.org. TXT "v=spf1 -all"`.
func Start(t testing.TB, rrs ...string) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}, servfail: map[string]bool{}, silent: map[string]bool{}}
	s.Add(t, rrs...)
	pc, ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
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

// Del removes the records of name of type qtype ("TXT"); a name left
// without records answers NXDOMAIN again.
func (s *Server) Del(name, qtype string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = fqdn(name)
	var kept []dns.RR
	for _, rr := range s.rrs[name] {
		if dns.TypeToString[rr.Header().Rrtype] != qtype {
			kept = append(kept, rr)
		}
	}
	if kept == nil {
		delete(s.rrs, name)
	} else {
		s.rrs[name] = kept
	}
}

// ServFail makes queries for name (a FQDN, with or without the dot) answer
// SERVFAIL: of the types qtypes ("TLSA") only, or of every type if none.
func (s *Server) ServFail(name string, qtypes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name = fqdn(name)
	if len(qtypes) == 0 {
		s.servfail[name] = true
	}
	for _, qt := range qtypes {
		s.servfail[name+"/"+qt] = true
	}
}

// Silent makes queries for name go unanswered: the client times out.
func (s *Server) Silent(name string) {
	s.mu.Lock()
	s.silent[fqdn(name)] = true
	s.mu.Unlock()
}

// Sign marks domain and the names under it as signed: their answers,
// NXDOMAIN included, carry the AD bit; SERVFAIL never does.
func (s *Server) Sign(domain string) {
	s.mu.Lock()
	s.signed = append(s.signed, fqdn(domain))
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
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.log = append(s.log, dns.TypeToString[q.Qtype]+" "+name)
	silent := s.silent[name]
	servfail := s.servfail[name] || s.servfail[name+"/"+dns.TypeToString[q.Qtype]]
	rrs, known := s.rrs[name]
	signed := s.isSigned(name)
	s.mu.Unlock()
	switch {
	case silent:
		return
	case servfail:
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	case !known:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
	}
	m.AuthenticatedData = signed
	w.WriteMsg(m)
}

// isSigned says whether name is a signed domain or under one; s.mu is held.
func (s *Server) isSigned(name string) bool {
	for _, d := range s.signed {
		if name == d || strings.HasSuffix(name, "."+d) {
			return true
		}
	}
	return false
}

func fqdn(name string) string { return dns.Fqdn(strings.ToLower(name)) }
