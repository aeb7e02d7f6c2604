package config

import (
	"fmt"
	"net"
	"time"

	"smtp-bs/pkg/dnsbl"
)

// Checks configures what smtp-bs asks of the DNS about a client and its
// mail: DNSBL/DNSWL scoring at connect, SPF, DKIM and DMARC, and the
// Authentication-Results header. All of it is off by default.
type Checks struct {
	// Resolver is "ip:port" of the DNS server every check asks: a local
	// caching resolver (unbound), the only cache there is, since each
	// connection is its own process. "": resolv.conf's servers.
	Resolver string `toml:"resolver"`
	// AuthservID names us in Authentication-Results; "": hostname.
	AuthservID string `toml:"authserv_id"`
	// Timeout bounds each of SPF (at MAIL), and DKIM with DMARC (after
	// DATA).
	Timeout Duration `toml:"timeout"`

	DNSBL DNSBL `toml:"dnsbl"`
	SPF   SPF   `toml:"spf"`
	DMARC DMARC `toml:"dmarc"`
}

// DNSBL is postscreen's DNSBL weighting, asked before the greeting of a
// client outside relay_networks.
type DNSBL struct {
	// Zones in postscreen's notation: "zen.spamhaus.org*3",
	// "list.dnswl.org=127.0.[0..255].[1..3]*-5", "bl.example&0.0.0.4".
	// Empty: no DNSBL check.
	Zones []string `toml:"zones"`
	// Threshold: a score at or above it is refused (554 5.7.1).
	Threshold int `toml:"threshold"`
	// Timeout bounds the whole check, all zones together.
	Timeout Duration `toml:"timeout"`
}

// SPF checks the envelope sender (RFC 7208) once per transaction, at MAIL.
type SPF struct {
	Enabled bool `toml:"enabled"`
	// Policy maps an SPF result (fail, softfail, neutral, none,
	// temperror, permerror) to "record" (the default: only the header and
	// the log say it), "reject" (550 5.7.23, 5.7.24 for permerror) or
	// "tempfail" (451 4.7.24).
	Policy map[string]string `toml:"policy"`
}

// DMARC verifies every DKIM signature, evaluates DMARC (RFC 7489) and
// adds Authentication-Results with spf, dkim and dmarc.
type DMARC struct {
	Enabled bool `toml:"enabled"`
	// Reject honours p=reject (550 5.7.1); off, the result is recorded.
	Reject bool `toml:"reject"`
	// Quarantine honours p=quarantine: the message is held (qrun
	// -release frees it); off, the result is recorded.
	Quarantine bool `toml:"quarantine"`
}

// Check defaults.
const (
	DefaultChecksTimeout = 10 * time.Second
	DefaultDNSBLTimeout  = 5 * time.Second
)

// SPFResults are the results a policy may name.
var SPFResults = []string{"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"}

// SPFAction is the configured action for an SPF result.
func (s *SPF) Action(result string) string {
	if a, ok := s.Policy[result]; ok {
		return a
	}
	return "record"
}

// SPFOn reports whether SPF is evaluated: for its own policy, or for DMARC.
func (c *Checks) SPFOn() bool { return c.SPF.Enabled || c.DMARC.Enabled }

func (c *Config) validateChecks(bad func(msg string, key ...string) error) error {
	k := &c.Checks
	if k.Resolver != "" {
		if _, _, err := net.SplitHostPort(k.Resolver); err != nil {
			return bad("must be ip:port of a DNS server (e.g. 127.0.0.1:53)", "checks", "resolver")
		}
	}
	if k.AuthservID == "" {
		k.AuthservID = c.Hostname
	}
	for _, d := range []struct {
		d   *Duration
		def time.Duration
		key []string
	}{
		{&k.Timeout, DefaultChecksTimeout, []string{"checks", "timeout"}},
		{&k.DNSBL.Timeout, DefaultDNSBLTimeout, []string{"checks", "dnsbl", "timeout"}},
	} {
		switch {
		case d.d.Duration < 0:
			return bad("must be a positive duration", d.key...)
		case d.d.Duration == 0:
			d.d.Duration = d.def
		}
	}
	for _, z := range k.DNSBL.Zones {
		if _, err := dnsbl.ParseSite(z); err != nil {
			return bad(err.Error(), "checks", "dnsbl", "zones")
		}
	}
	if k.DNSBL.Threshold == 0 {
		k.DNSBL.Threshold = 1
	}
	if k.DNSBL.Threshold < 0 {
		return bad("must be positive", "checks", "dnsbl", "threshold")
	}
	for res, action := range k.SPF.Policy {
		known := false
		for _, r := range SPFResults {
			known = known || r == res
		}
		if !known || res == "pass" {
			return bad(fmt.Sprintf("%q is not an SPF result a policy may name (fail, softfail, neutral, none, temperror, permerror)", res), "checks", "spf", "policy")
		}
		switch action {
		case "record", "reject", "tempfail":
		default:
			return bad(fmt.Sprintf("%s = %q: want \"record\", \"reject\" or \"tempfail\"", res, action), "checks", "spf", "policy")
		}
	}
	return nil
}
