package mailauth

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/pkg/dnsclient"
)

func TestSPF(t *testing.T) {
	rrs := []string{
		`pass.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"`,
		`fail.test. TXT "v=spf1 ip4:198.51.100.1 -all"`,
		`softfail.test. TXT "v=spf1 ~all"`,
		`neutral.test. TXT "v=spf1 ?all"`,
		`nospf.test. TXT "some other text"`,
		`perm.test. TXT "v=spf1 frobnicate:x -all"`,
		`two.test. TXT "v=spf1 -all"`,
		`two.test. TXT "v=spf1 +all"`,
		`helo.test. TXT "v=spf1 a -all"`,
		`helo.test. A 192.0.2.1`,
		`viaa.test. TXT "v=spf1 include:pass.test -all"`,
	}
	// limit10 has exactly 10 terms that query the DNS and ends in ~all;
	// limit11 has one more (RFC 7208 4.6.4: permerror).
	var ten []string
	for i := 1; i <= 11; i++ {
		rrs = append(rrs, fmt.Sprintf(`inc%d.test. TXT "v=spf1 ip4:203.0.113.%d -all"`, i, i))
		ten = append(ten, fmt.Sprintf("include:inc%d.test", i))
	}
	rrs = append(rrs,
		fmt.Sprintf(`limit10.test. TXT "v=spf1 %s ~all"`, strings.Join(ten[:10], " ")),
		fmt.Sprintf(`limit11.test. TXT "v=spf1 %s ~all"`, strings.Join(ten, " ")))
	srv := dnstest.Start(t, rrs...)
	srv.ServFail("temp.test")
	srv.Silent("slow.test")
	res := dnsclient.New(srv.Addr)
	ip := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		helo, from, want, domain string
		timeout                  time.Duration
	}{
		{"c.test", "a@pass.test", "pass", "pass.test", 0},
		{"c.test", "a@viaa.test", "pass", "viaa.test", 0},
		{"c.test", "a@fail.test", "fail", "fail.test", 0},
		{"c.test", "a@softfail.test", "softfail", "softfail.test", 0},
		{"c.test", "a@neutral.test", "neutral", "neutral.test", 0},
		{"c.test", "a@nospf.test", "none", "nospf.test", 0},
		{"c.test", "a@nxdomain.test", "none", "nxdomain.test", 0},
		{"c.test", "a@temp.test", "temperror", "temp.test", 0},
		{"c.test", "a@slow.test", "temperror", "slow.test", 300 * time.Millisecond},
		{"c.test", "a@perm.test", "permerror", "perm.test", 0},
		{"c.test", "a@two.test", "permerror", "two.test", 0},
		{"c.test", "a@limit10.test", "softfail", "limit10.test", 0},
		{"c.test", "a@limit11.test", "permerror", "limit11.test", 0},
		{"helo.test", "", "pass", "helo.test", 0}, // <>: the HELO name
		{"[192.0.2.1]", "", "none", "[192.0.2.1]", 0},
	} {
		timeout := tc.timeout
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		got := CheckSPF(ctx, res, ip, tc.helo, tc.from)
		cancel()
		if got.Result != tc.want || got.Domain != tc.domain {
			t.Errorf("%s/%q: %s for %s (%v), want %s for %s", tc.helo, tc.from, got.Result, got.Domain, got.Err, tc.want, tc.domain)
		}
	}
	// The limit stops the lookups: limit11's 11th include is never asked.
	for _, q := range srv.Log() {
		if strings.Contains(q, "inc11.test") {
			t.Errorf("asked past the lookup limit: %s", q)
		}
	}
}
