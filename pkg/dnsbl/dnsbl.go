// Package dnsbl scores a connecting client against DNS block and allow
// lists, the way Postfix's postscreen does: every zone is asked at once,
// each site whose filter matches the answer adds its weight (negative for
// an allow list), and a score at or above the threshold refuses the
// client.
//
// What it promises:
//   - One overall deadline bounds the whole check; a zone that has not
//     answered by then counts 0. A zone that fails (SERVFAIL, timeout, an
//     error code such as 127.255.255.254) counts 0 too: a DNS failure
//     never refuses a client. Both are reported in Result.Errors.
//   - The check ends as soon as the zones still out can no longer change
//     the verdict.
//   - Each zone is asked once (A record), whatever number of sites name
//     it; its TXT record is asked only when the client is refused, for
//     the reply.
//   - Nothing is cached: one process serves one connection, so the cache
//     is the local resolver's (see dnsclient).
package dnsbl

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"smtp-bs/pkg/dnsclient"
)

// Checker holds the configured sites.
type Checker struct {
	Sites     []Site
	Threshold int
	Timeout   time.Duration
	Resolver  dnsclient.Resolver
}

// Hit is one site that matched.
type Hit struct {
	Site    Site
	Answers []netip.Addr
}

// ZoneError is one zone that gave no usable answer.
type ZoneError struct {
	Zone string
	Err  error
}

// Result is the outcome of one check.
type Result struct {
	Score  int
	Listed bool // Score >= Threshold
	Hits   []Hit
	Errors []ZoneError
	// Zone is the listing zone named in the reply (the matched site with
	// the highest weight) and Text its TXT record, "" when it has none.
	Zone, Text string
}

// Zones is the hits as the log shows them: zone*weight, in order.
func (r Result) Zones() string {
	var parts []string
	for _, h := range r.Hits {
		parts = append(parts, fmt.Sprintf("%s*%d", h.Site.Zone, h.Site.Weight))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// Reply is the text of the 554 reply for a listed client.
func (r Result) Reply(client netip.Addr) string {
	msg := fmt.Sprintf("Service unavailable; client [%s] blocked using %s", client, r.Zone)
	if r.Text != "" {
		msg += ": " + r.Text
	}
	return msg
}

type answer struct {
	zone  string
	addrs []netip.Addr
	err   error
}

// Check scores ip. It never fails: what went wrong is in Result.Errors.
func (c *Checker) Check(ctx context.Context, ip netip.Addr) Result {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	ip = ip.Unmap()
	rev := Reverse(ip)
	byZone := map[string][]Site{}
	var zones []string
	for _, s := range c.Sites {
		if _, ok := byZone[s.Zone]; !ok {
			zones = append(zones, s.Zone)
		}
		byZone[s.Zone] = append(byZone[s.Zone], s)
	}
	ch := make(chan answer, len(zones))
	for _, z := range zones {
		go func() {
			ips, err := c.Resolver.LookupIP(ctx, "ip4", rev+"."+z)
			a := answer{zone: z}
			if err != nil && !dnsclient.NotFound(err) {
				a.err = err
			}
			for _, x := range ips {
				if v, ok := netip.AddrFromSlice(x); ok {
					a.addrs = append(a.addrs, v.Unmap())
				}
			}
			ch <- a
		}()
	}
	var res Result
	pending := map[string]bool{}
	for _, z := range zones {
		pending[z] = true
	}
	for len(pending) > 0 && !c.decided(res.Score, pending, byZone) {
		select {
		case a := <-ch:
			delete(pending, a.zone)
			c.score(&res, a, byZone[a.zone])
		case <-ctx.Done():
			for _, z := range zones {
				if pending[z] {
					res.Errors = append(res.Errors, ZoneError{z, fmt.Errorf("no answer within %v", c.Timeout)})
				}
			}
			pending = nil
		}
	}
	res.Listed = res.Score >= c.Threshold
	if res.Listed {
		// The heaviest site names the zone; on a tie, the first configured.
		best := Site{}
		for _, s := range c.Sites {
			for _, h := range res.Hits {
				if h.Site.text == s.text && h.Site.Zone == s.Zone && s.Weight > best.Weight {
					best = s
				}
			}
		}
		res.Zone = best.Zone
		if txt, err := c.Resolver.LookupTXT(ctx, rev+"."+res.Zone); err == nil && len(txt) > 0 {
			res.Text = clean(txt[0])
		}
	}
	sort.Slice(res.Errors, func(i, j int) bool { return res.Errors[i].Zone < res.Errors[j].Zone })
	return res
}

// decided reports whether the zones still pending can no longer move the
// score across the threshold.
func (c *Checker) decided(score int, pending map[string]bool, byZone map[string][]Site) bool {
	lo, hi := score, score
	for z := range pending {
		for _, s := range byZone[z] {
			if s.Weight < 0 {
				lo += s.Weight
			} else {
				hi += s.Weight
			}
		}
	}
	return lo >= c.Threshold || hi < c.Threshold
}

func (c *Checker) score(res *Result, a answer, sites []Site) {
	if a.err != nil {
		res.Errors = append(res.Errors, ZoneError{a.zone, a.err})
		return
	}
	for _, x := range a.addrs {
		if x.Is4() && !IsListing(x) && x.As4()[0] == 127 {
			res.Errors = append(res.Errors, ZoneError{a.zone, fmt.Errorf("answered %s, an error code (is the query refused? use a resolver of your own)", x)})
			break
		}
	}
	for _, s := range sites {
		var matched []netip.Addr
		for _, x := range a.addrs {
			if s.Matches(x) {
				matched = append(matched, x)
			}
		}
		if len(matched) > 0 {
			res.Score += s.Weight
			res.Hits = append(res.Hits, Hit{Site: s, Answers: matched})
		}
	}
}

// Reverse is the DNSBL query name of ip without the zone: its octets
// reversed for IPv4, its nibbles reversed for IPv6 (RFC 5782).
func Reverse(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() {
		b := ip.As4()
		return fmt.Sprintf("%d.%d.%d.%d", b[3], b[2], b[1], b[0])
	}
	b := ip.As16()
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 63)
	for i := len(b) - 1; i >= 0; i-- {
		out = append(out, hex[b[i]&0xf], '.', hex[b[i]>>4], '.')
	}
	return string(out[:len(out)-1])
}

// clean keeps a TXT record fit for an SMTP reply: printable ASCII, one
// line, at most 200 bytes.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 200 {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}
