// Package mailauth evaluates what a receiving MTA can learn of a message's
// origin: SPF (RFC 7208) for the envelope, DKIM (RFC 6376) for every
// signature, DMARC (RFC 7489) from both, and writes it as an
// Authentication-Results header (RFC 8601) under our authserv-id.
//
// What it promises:
//   - Every check is bounded by its context's deadline and by the RFCs'
//     own limits (SPF: 10 DNS-querying terms, 2 void lookups; DKIM: at
//     most MaxSignatures signatures verified); a DNS failure is a
//     temperror, never a fail.
//   - Rewrite removes every Authentication-Results header that carries
//     our authserv-id before ours is added (RFC 8601 section 5): a sender
//     cannot forge our verdict.
//   - It holds no state: nothing outlives one message.
package mailauth

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"blitiri.com.ar/go/spf"

	"smtp-bs/pkg/dnsclient"
)

// SPF is the outcome of one SPF check.
type SPF struct {
	Result string // pass, fail, softfail, neutral, none, temperror, permerror
	// Identity is the checked identity: the MAIL FROM address, or
	// postmaster@<HELO name> for the null sender.
	Identity string
	Helo     string
	Domain   string // the domain whose record was evaluated
	Err      error  // why, for the log; may be set with any result
}

// CheckSPF evaluates the SPF record of the envelope sender (or, for the
// null sender, of the HELO name) for ip, within ctx's deadline.
func CheckSPF(ctx context.Context, r dnsclient.Resolver, ip netip.Addr, helo, from string) SPF {
	s := SPF{Identity: from, Helo: helo}
	if from == "" {
		s.Identity = "postmaster@" + helo
	}
	_, s.Domain, _ = strings.Cut(s.Identity, "@")
	if s.Domain == "" || strings.HasPrefix(s.Domain, "[") {
		// An address literal as HELO or sender: nothing to look up.
		s.Result = string(spf.None)
		return s
	}
	res, err := spf.CheckHostWithSender(net.IP(ip.Unmap().AsSlice()), helo, s.Identity,
		spf.WithContext(ctx), spf.WithResolver(r))
	s.Result, s.Err = string(res), err
	return s
}
