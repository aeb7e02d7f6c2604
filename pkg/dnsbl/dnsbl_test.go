package dnsbl

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/pkg/dnsclient"
)

func sites(t *testing.T, specs ...string) []Site {
	t.Helper()
	var out []Site
	for _, s := range specs {
		site, err := ParseSite(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, site)
	}
	return out
}

func TestParseSite(t *testing.T) {
	for _, tc := range []struct {
		in     string
		zone   string
		weight int
		match  []string
		miss   []string
	}{
		{"zen.spamhaus.org*3", "zen.spamhaus.org", 3, []string{"127.0.0.2", "127.0.0.11"}, []string{"127.255.255.254", "10.0.0.1"}},
		{"bl.test", "bl.test", 1, []string{"127.0.0.2"}, []string{"127.255.255.252"}},
		{"list.dnswl.org=127.0.[0..255].[1..3]*-5", "list.dnswl.org", -5, []string{"127.0.10.1", "127.0.255.3"}, []string{"127.0.10.0", "127.0.10.4", "127.1.10.1"}},
		{"b.barracudacentral.org=127.0.0.2*7", "b.barracudacentral.org", 7, []string{"127.0.0.2"}, []string{"127.0.0.3"}},
		{"bl.test=127.0.0.[2;4..5]", "bl.test", 1, []string{"127.0.0.2", "127.0.0.5"}, []string{"127.0.0.3", "127.0.0.6"}},
		{"BL.Test.&0.0.0.4*2", "bl.test", 2, []string{"127.0.0.4", "127.0.0.6", "127.0.0.255"}, []string{"127.0.0.2", "127.0.0.3"}},
	} {
		s, err := ParseSite(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if s.Zone != tc.zone || s.Weight != tc.weight {
			t.Errorf("%s: zone %q weight %d, want %q %d", tc.in, s.Zone, s.Weight, tc.zone, tc.weight)
		}
		for _, a := range tc.match {
			if !s.Matches(netip.MustParseAddr(a)) {
				t.Errorf("%s: %s does not match", tc.in, a)
			}
		}
		for _, a := range tc.miss {
			if s.Matches(netip.MustParseAddr(a)) {
				t.Errorf("%s: %s matches", tc.in, a)
			}
		}
	}
	for _, bad := range []string{"", "*3", "bl.test*0", "bl.test*x", "bl", "bl.test=127.0.0", "bl.test=127.0.0.256",
		"bl.test=127.0.0.1..3", "bl.test=127.0.0.[3..1]", "bl.test&::1", "bl test.org", "bl.test=127.0.0.[1"} {
		if _, err := ParseSite(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestReverse(t *testing.T) {
	if got := Reverse(netip.MustParseAddr("192.0.2.1")); got != "1.2.0.192" {
		t.Errorf("IPv4: %s", got)
	}
	if got := Reverse(netip.MustParseAddr("::ffff:192.0.2.1")); got != "1.2.0.192" {
		t.Errorf("v4-mapped: %s", got)
	}
	want := "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
	if got := Reverse(netip.MustParseAddr("2001:db8::1")); got != want {
		t.Errorf("IPv6: %s", got)
	}
}

// The client 192.0.2.1 is listed by two block lists, one with a TXT, and
// allow-listed by one allow list; 192.0.2.2 is listed by one only.
func server(t *testing.T) *dnstest.Server {
	return dnstest.Start(t,
		"1.2.0.192.bl1.test. A 127.0.0.2",
		`1.2.0.192.bl1.test. TXT "Listed; see https://bl1.test/q?192.0.2.1"`,
		"1.2.0.192.bl2.test. A 127.0.0.4",
		"1.2.0.192.bl2.test. A 127.0.0.10",
		"1.2.0.192.wl.test. A 127.0.15.2",
		"2.2.0.192.bl2.test. A 127.0.0.4",
		"3.2.0.192.bl1.test. A 127.255.255.254",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl1.test. A 127.0.0.3",
	)
}

func check(t *testing.T, srv *dnstest.Server, threshold int, timeout time.Duration, ip string, specs ...string) Result {
	t.Helper()
	c := &Checker{Sites: sites(t, specs...), Threshold: threshold, Timeout: timeout, Resolver: dnsclient.New(srv.Addr)}
	return c.Check(context.Background(), netip.MustParseAddr(ip))
}

func TestWeights(t *testing.T) {
	srv := server(t)
	// Threshold 5: only all three sites together reach it, so every
	// answer is waited for.
	r := check(t, srv, 5, 5*time.Second, "192.0.2.1", "bl1.test*2", "bl2.test=127.0.0.4", "bl2.test=127.0.0.10*2")
	if r.Score != 5 || !r.Listed || len(r.Hits) != 3 || len(r.Errors) != 0 {
		t.Fatalf("score %d listed %v hits %s errors %v", r.Score, r.Listed, r.Zones(), r.Errors)
	}
	if r.Zone != "bl1.test" || r.Text != "Listed; see https://bl1.test/q?192.0.2.1" {
		t.Errorf("reply zone %q text %q", r.Zone, r.Text)
	}
	if got := r.Reply(netip.MustParseAddr("192.0.2.1")); got != "Service unavailable; client [192.0.2.1] blocked using bl1.test: Listed; see https://bl1.test/q?192.0.2.1" {
		t.Errorf("reply %q", got)
	}
	for _, q := range srv.Log() {
		if strings.Count(q, "bl2.test") > 0 && strings.HasPrefix(q, "TXT") {
			t.Errorf("TXT asked of a zone not named in the reply: %s", q)
		}
	}
	// Under the threshold: no TXT query at all.
	before := len(srv.Log())
	r = check(t, srv, 3, 5*time.Second, "192.0.2.2", "bl1.test*2", "bl2.test=127.0.0.4")
	if r.Listed || r.Text != "" {
		t.Errorf("192.0.2.2: score %d listed %v text %q", r.Score, r.Listed, r.Text)
	}
	for _, q := range srv.Log()[before:] {
		if strings.HasPrefix(q, "TXT") {
			t.Errorf("TXT asked for a client not refused: %s", q)
		}
	}
	// IPv6 by nibbles.
	if r := check(t, srv, 1, 5*time.Second, "2001:db8::1", "bl1.test"); !r.Listed {
		t.Errorf("IPv6 client not listed: %+v", r)
	}
}

func TestAllowList(t *testing.T) {
	srv := server(t)
	r := check(t, srv, 3, 5*time.Second, "192.0.2.1", "bl1.test*2", "bl2.test=127.0.0.4*2", "wl.test=127.0.[0..255].[0..3]*-5")
	if r.Score > -1 || r.Listed {
		t.Errorf("allow-listed client: score %d listed %v hits %s", r.Score, r.Listed, r.Zones())
	}
	// The allow list's filter does not match: it counts nothing.
	r = check(t, srv, 3, 5*time.Second, "192.0.2.1", "bl1.test*2", "bl2.test=127.0.0.4*2", "wl.test=127.0.[0..255].[3..3]*-5")
	if r.Score != 4 || !r.Listed {
		t.Errorf("allow list filter missed: score %d listed %v", r.Score, r.Listed)
	}
}

// A zone's error code (127.255.255.x) counts nothing and is reported.
func TestErrorCode(t *testing.T) {
	srv := server(t)
	r := check(t, srv, 1, 5*time.Second, "192.0.2.3", "bl1.test")
	if r.Listed || r.Score != 0 || len(r.Errors) != 1 || !strings.Contains(r.Errors[0].Err.Error(), "127.255.255.254") {
		t.Errorf("error code: %+v", r)
	}
}

func TestServFail(t *testing.T) {
	srv := server(t)
	srv.ServFail("1.2.0.192.bl1.test")
	r := check(t, srv, 1, 5*time.Second, "192.0.2.1", "bl1.test*2", "wl.test*-1")
	if r.Listed || r.Score > 0 {
		t.Errorf("SERVFAIL counted: score %d listed %v", r.Score, r.Listed)
	}
	if len(r.Errors) != 1 || r.Errors[0].Zone != "bl1.test" {
		t.Errorf("SERVFAIL not reported: %+v", r.Errors)
	}
}

// A zone that never answers counts nothing once the deadline has passed,
// and the others still count.
func TestTimeout(t *testing.T) {
	srv := server(t)
	srv.Silent("1.2.0.192.wl.test")
	r := check(t, srv, 2, 300*time.Millisecond, "192.0.2.1", "bl1.test*2", "wl.test*-5")
	if !r.Listed || r.Score != 2 {
		t.Errorf("silent allow list: score %d listed %v", r.Score, r.Listed)
	}
	if len(r.Errors) != 1 || r.Errors[0].Zone != "wl.test" || !strings.Contains(r.Errors[0].Err.Error(), "no answer") {
		t.Errorf("timeout not reported: %+v", r.Errors)
	}
	// Every zone silent: nothing counts, nothing refuses.
	srv.Silent("1.2.0.192.bl1.test")
	if r := check(t, srv, 1, 200*time.Millisecond, "192.0.2.1", "bl1.test*2"); r.Listed || len(r.Errors) != 1 {
		t.Errorf("silent block list: %+v", r)
	}
}

// Once the verdict cannot change, the check does not wait for the rest.
func TestDecidedEarly(t *testing.T) {
	srv := server(t)
	srv.Silent("1.2.0.192.bl2.test")
	r := check(t, srv, 2, time.Hour, "192.0.2.1", "bl1.test*2", "bl2.test*3")
	if !r.Listed || r.Score != 2 {
		t.Errorf("score %d listed %v", r.Score, r.Listed)
	}
	// A threshold no answer could reach: no wait at all.
	r = check(t, srv, 10, time.Hour, "192.0.2.1", "bl1.test*2", "bl2.test*3")
	if r.Listed {
		t.Errorf("score %d listed %v", r.Score, r.Listed)
	}
}

// A zone's TXT goes into our reply: no CR, LF or other control character
// of it may reach the client (a second reply line, a forged 250).
func TestTXTCleaned(t *testing.T) {
	srv := dnstest.Start(t,
		"9.2.0.192.bl1.test. A 127.0.0.2",
		`9.2.0.192.bl1.test. TXT "Listed\013\010250 2.0.0 OK\000 caf\195\169"`,
	)
	r := check(t, srv, 1, 5*time.Second, "192.0.2.9", "bl1.test")
	if !r.Listed || r.Text != "Listed250 2.0.0 OK caf" {
		t.Errorf("text %q (listed %v)", r.Text, r.Listed)
	}
	if reply := r.Reply(netip.MustParseAddr("192.0.2.9")); strings.ContainsAny(reply, "\r\n\x00") {
		t.Errorf("reply %q", reply)
	}
}
