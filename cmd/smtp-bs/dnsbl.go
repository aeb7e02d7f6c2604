package main

import (
	"context"
	"fmt"
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/dnsbl"
	"smtp-bs/pkg/dnsclient"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/session"
)

// dnsblListed scores a client outside relay_networks against [checks.dnsbl]
// before the greeting, and logs what it found. A listed client is refused
// by the caller; a DNS failure only logs. Under implicit TLS (port 465,
// submission) there is no check: a plaintext 554 would reach a client
// that speaks TLS as garbage.
func dnsblListed(cfg *config.Config, client session.Client, log *maillog.Logger, implicitTLS bool) (string, bool) {
	k := cfg.Checks
	if len(k.DNSBL.Zones) == 0 || implicitTLS || client.Local || client.Relay || !client.Addr.IsValid() || cfg.SMTP.RelayAllowed(client.Addr) {
		return "", false
	}
	c := &dnsbl.Checker{Threshold: k.DNSBL.Threshold, Timeout: k.DNSBL.Timeout.Duration, Resolver: dnsclient.New(k.Resolver)}
	for _, z := range k.DNSBL.Zones {
		s, _ := dnsbl.ParseSite(z) // validated with the config
		c.Sites = append(c.Sites, s)
	}
	start := time.Now()
	r := c.Check(context.Background(), client.Addr)
	ms := fmt.Sprintf("%.0f", time.Since(start).Seconds()*1000)
	for _, e := range r.Errors {
		log.Event(maillog.Warning, "dnsbl", "peer", client, "zone", e.Zone, "result", "error", "err", e.Err)
	}
	if r.Listed {
		log.Event(maillog.Warning, "reject", "stage", "dnsbl", "peer", client, "code", 554, "score", r.Score,
			"threshold", k.DNSBL.Threshold, "zones", r.Zones(), "ms", ms, "reason", r.Reply(client.Addr))
		return r.Reply(client.Addr), true
	}
	if len(r.Hits) > 0 {
		log.Event(maillog.Info, "dnsbl", "peer", client, "result", "pass", "score", r.Score,
			"threshold", k.DNSBL.Threshold, "zones", r.Zones(), "ms", ms)
	}
	return "", false
}
