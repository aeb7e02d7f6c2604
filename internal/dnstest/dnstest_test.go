package dnstest

import (
	"testing"

	"github.com/miekg/dns"
)

func ask(t *testing.T, s *Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	in, _, err := (&dns.Client{Net: network}).Exchange(m, s.Addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", dns.TypeToString[qtype], name, network, err)
	}
	return in
}

// The answers the tests rely on: NXDOMAIN vs NODATA, Del, ServFail by name
// or by type, AD only under signed domains and never on SERVFAIL, TCP on
// the UDP port, and the query log.
func TestAnswers(t *testing.T) {
	s := Start(t, "mx.example.test. A 127.0.0.1", `mx.example.test. TXT "x"`, "other.test. A 127.0.0.2")
	s.Sign("Example.Test")
	s.ServFail("bad.example.test")
	s.ServFail("mx.example.test", "MX")
	type want struct {
		rcode, answers int
		ad             bool
	}
	check := func(network, name string, qtype uint16, w want) {
		t.Helper()
		in := ask(t, s, network, name, qtype)
		if in.Rcode != w.rcode || len(in.Answer) != w.answers || in.AuthenticatedData != w.ad || !in.Authoritative || !in.RecursionAvailable {
			t.Errorf("%s %s over %s: %s, %d answers, AD %v, AA %v, RA %v; want %s, %d, AD %v, AA and RA",
				dns.TypeToString[qtype], name, network, dns.RcodeToString[in.Rcode], len(in.Answer), in.AuthenticatedData,
				in.Authoritative, in.RecursionAvailable, dns.RcodeToString[w.rcode], w.answers, w.ad)
		}
	}
	check("udp", "MX.example.test.", dns.TypeA, want{dns.RcodeSuccess, 1, true})
	check("tcp", "mx.example.test.", dns.TypeA, want{dns.RcodeSuccess, 1, true})
	check("udp", "mx.example.test.", dns.TypeAAAA, want{dns.RcodeSuccess, 0, true})
	check("udp", "none.example.test.", dns.TypeA, want{dns.RcodeNameError, 0, true})
	check("udp", "other.test.", dns.TypeA, want{dns.RcodeSuccess, 1, false})
	check("udp", "none.test.", dns.TypeA, want{dns.RcodeNameError, 0, false})
	check("udp", "bad.example.test.", dns.TypeTXT, want{dns.RcodeServerFailure, 0, false})
	check("udp", "mx.example.test.", dns.TypeMX, want{dns.RcodeServerFailure, 0, false})
	check("udp", "mx.example.test.", dns.TypeTXT, want{dns.RcodeSuccess, 1, true})
	s.Del("mx.example.test", "A")
	check("udp", "mx.example.test.", dns.TypeA, want{dns.RcodeSuccess, 0, true})
	s.Del("mx.example.test.", "TXT")
	check("udp", "mx.example.test.", dns.TypeTXT, want{dns.RcodeNameError, 0, true})
	if n := s.Queries(); n != 11 {
		t.Errorf("Queries() = %d, want 11", n)
	}
	if l := s.Log(); len(l) != 11 || l[0] != "A mx.example.test." || l[10] != "TXT mx.example.test." {
		t.Errorf("Log() = %q", l)
	}
}
