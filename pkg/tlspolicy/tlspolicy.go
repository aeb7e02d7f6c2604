// Package tlspolicy decides, for one MX host of one recipient domain, what
// TLS an outbound SMTP connection must reach and how the server's
// certificate is checked, so that an attacker who strips STARTTLS or
// presents a certificate of his own gets the mail deferred, not read.
//
// One decision (Engine.Decide) draws on, in order of strength:
//   - DANE (RFC 7672): signed TLSA records of the MX host;
//   - MTA-STS (RFC 8461): the domain's HTTPS-published policy, cached in
//     the spool; DANE wins where both apply (RFC 8461 2);
//   - remembered levels: a domain once reached with a verified certificate
//     is not accepted later with less (as chasquid does);
//   - the configured default (opportunistic STARTTLS).
//
// Engine.Observe is told each connection's outcome: it records the levels
// reached and counts successes and failures per policy domain per day for
// TLSRPT (RFC 8460). State lives under one directory of the spool, written
// by qrun only (one qrun at a time holds the spool lock); every file is
// replaced by rename, so a crash leaves the old or the new file, never a
// torn one.
package tlspolicy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// Mode is what a connection must reach.
type Mode int

const (
	// None: plain SMTP, no STARTTLS.
	None Mode = iota
	// Opportunistic: STARTTLS when offered, any certificate; cleartext when not.
	Opportunistic
	// RequiredUnverified: TLS or defer; any certificate.
	RequiredUnverified
	// RequiredVerified: TLS with a certificate that chains to a trusted CA
	// and names the MX host, or defer.
	RequiredVerified
	// DANE: TLS with a certificate matching the MX host's TLSA records, or defer.
	DANE
)

func (m Mode) String() string {
	switch m {
	case None:
		return "none"
	case Opportunistic:
		return "opportunistic"
	case RequiredUnverified:
		return "required-unverified"
	case RequiredVerified:
		return "required-verified"
	case DANE:
		return "dane"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// RequiresTLS says whether a connection without TLS must be deferred.
func (m Mode) RequiresTLS() bool { return m >= RequiredUnverified }

// Decision is what one connection to one MX host must reach.
type Decision struct {
	Mode Mode
	// Source says what set Mode: "config", "dane", "mta-sts",
	// "remembered" or "override".
	Source string
	// ServerName is sent as SNI and, under RequiredVerified and DANE, is
	// the name the certificate must carry: the MX host name.
	ServerName string
	// Defer, when set, says not to connect to this host now: a temporary
	// failure with this text (a signed zone whose TLSA lookup failed, an
	// MX host that an enforced MTA-STS policy does not list).
	Defer string
	// Notes say what was looked at, for qrun -route and the log.
	Notes []string

	domain  string
	verify  func(tls.ConnectionState) error
	roots   *x509.CertPool
	sts     *stsPolicy // the MTA-STS policy that applied (enforce or testing)
	daneRec []string   // the TLSA records that applied, for reports
}

// TLSConfig is the client configuration for this decision.
func (d Decision) TLSConfig() *tls.Config {
	cfg := &tls.Config{ServerName: d.ServerName, RootCAs: d.roots, MinVersion: tls.VersionTLS12}
	switch d.Mode {
	case RequiredVerified:
	case DANE:
		// The chain is checked by verifyDANE, not against the CA pool.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = d.verify
	default:
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

// Key tells decisions apart for connection reuse: a connection made
// under one decision serves another only if the key is the same.
func (d Decision) Key() string { return d.Mode.String() + "/" + d.Source + "/" + d.ServerName }

// String is one line for people.
func (d Decision) String() string {
	s := fmt.Sprintf("TLS %s (%s)", d.Mode, d.Source)
	if d.Defer != "" {
		s += ": deferred: " + d.Defer
	}
	return s
}

// Override is the admin's word on one destination domain.
type Override struct {
	// Policy: "verified" (require a verified certificate whatever the
	// domain publishes), "exempt" (ignore DANE, MTA-STS and remembered
	// levels for it), or "" (no override).
	Policy string
	Reason string // logged with every decision it changes
}

// Options configure an Engine.
type Options struct {
	DANE   bool
	MTASTS bool
	// Remember: "verified" (remember a verified certificate), "tls"
	// (remember TLS of any kind, and verified), or "off".
	Remember string
	TLSRPT   bool
	// Resolver is the DNS server ("ip:port") for DANE and the TXT records;
	// "" is the first nameserver of /etc/resolv.conf.
	Resolver         string
	TrustedResolvers []string // AD believed from these, beyond loopback
	Dir              string   // state directory (in the spool)
	RootCAs          *x509.CertPool
	Overrides        map[string]Override // by domain, lower case
	// Port is the port MX hosts are reached on ("25"); TLSA names carry it.
	Port string

	// Seams for tests.
	Now        func() time.Time
	HTTPDial   func(ctx context.Context, network, addr string) (net.Conn, error)
	FetchLimit time.Duration // the whole MTA-STS policy fetch; 0 = 30s
	Log        func(event string, kv ...any)
}

// Engine makes decisions and records outcomes. It is safe for concurrent use.
type Engine struct {
	o    Options
	r    *resolver
	http *http.Client

	mu       sync.Mutex
	stsMemo  map[string]stsMemo    // looked up this run
	daneMemo map[string]daneResult // by domain and MX host, this run
	// exemptLogged: an exemption is logged once per run and domain.
	exemptLogged map[string]bool
}

// New returns an Engine; it creates o.Dir when missing (not its parent).
func New(o Options) (*Engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Port == "" {
		o.Port = "25"
	}
	if o.Remember == "" {
		o.Remember = "verified"
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Dir == "" {
		return nil, errors.New("tlspolicy: no state directory")
	}
	// Mkdir, not MkdirAll: a missing spool is not made here (qrun -init
	// makes it with its owner). A failure is logged and mail still flows;
	// each write tries to make the directory again.
	if err := os.Mkdir(o.Dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		o.Log("tlspolicy_error", "err", err)
	}
	e := &Engine{o: o, stsMemo: map[string]stsMemo{}, daneMemo: map[string]daneResult{}, exemptLogged: map[string]bool{}}
	if o.DANE || o.MTASTS || o.TLSRPT {
		// Without a resolver DANE and MTA-STS cannot apply; delivery
		// goes on as mx_tls says, and the log says why.
		r, err := newResolver(o.Resolver, o.TrustedResolvers)
		if err != nil {
			o.Log("tlspolicy_error", "err", err)
		}
		e.r = r
	}
	e.http = e.newHTTPClient()
	return e, nil
}

// SetLog sends the engine's events (a remembered level, a failed policy
// fetch, an exemption applied) to log; call it before the first Decide.
func (e *Engine) SetLog(log func(event string, kv ...any)) { e.o.Log = log }

// Decide says what a connection to mxHost (an MX host of domain, or the
// domain itself when it has no MX) must reach. base is what the delivery
// configuration asks for anyway (opportunistic, none, or required-verified
// for a REQUIRETLS message); the decision is never weaker than base.
func (e *Engine) Decide(ctx context.Context, domain, mxHost string, base Mode) Decision {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	mxHost = strings.ToLower(strings.TrimSuffix(mxHost, "."))
	d := Decision{Mode: base, Source: "config", ServerName: mxHost, domain: domain, roots: e.o.RootCAs}
	raise := func(m Mode, src string) {
		if m > d.Mode {
			d.Mode, d.Source = m, src
		}
	}
	if !isDNSName(domain) || !isDNSName(mxHost) {
		d.Notes = append(d.Notes, "an address literal or not a DNS name: no DANE, MTA-STS or remembered level")
		return d
	}
	ov := e.o.Overrides[domain]
	if ov.Policy == "exempt" {
		d.Notes = append(d.Notes, fmt.Sprintf("exempt from DANE, MTA-STS and remembered levels by the configuration: %s", ov.Reason))
		e.mu.Lock()
		first := !e.exemptLogged[domain]
		e.exemptLogged[domain] = true
		e.mu.Unlock()
		if first {
			e.o.Log("tls_policy_exempt", "domain", domain, "reason", ov.Reason)
		}
		return d
	}
	tlsaPresent := false
	if e.o.DANE && e.r != nil {
		dr := e.dane(ctx, domain, mxHost)
		d.Notes = append(d.Notes, dr.note)
		switch dr.state {
		case daneTempFail:
			d.Defer = dr.note
			return d
		case daneUsable:
			// RFC 7672: usable TLSA records decide; nothing weaker applies.
			d.Mode, d.Source = DANE, "dane"
			d.verify = verifyDANE(dr.recs, mxHost, e.o.Now)
			for _, r := range dr.recs {
				d.daneRec = append(d.daneRec, strings.TrimPrefix(r.String(), r.Hdr.String()))
			}
			return d
		case daneUnusable:
			// TLS, unauthenticated (RFC 7672 2.2); MTA-STS is not asked
			// where TLSA records exist (RFC 8461 2), but a remembered level
			// and the configuration may still demand more.
			raise(RequiredUnverified, "dane")
			tlsaPresent = true
		}
	}
	if e.o.MTASTS && e.r != nil && !tlsaPresent {
		p, note := e.stsPolicy(ctx, domain)
		d.Notes = append(d.Notes, note)
		if p != nil && p.Mode != "none" {
			d.sts = p
			if p.Mode == "enforce" {
				if !p.matchMX(mxHost) {
					d.Defer = fmt.Sprintf("MTA-STS: %s is not an MX host the enforced policy of %s allows (%s)", mxHost, domain, strings.Join(p.MX, ", "))
					return d
				}
				raise(RequiredVerified, "mta-sts")
			}
		}
	}
	if lvl, ok := e.remembered(domain); ok {
		d.Notes = append(d.Notes, fmt.Sprintf("remembered: %s was reached with %s on %s", domain, lvl.Level, lvl.Since.Format("2006-01-02")))
		raise(lvl.Level.mode(), "remembered")
	}
	if ov.Policy == "verified" {
		d.Notes = append(d.Notes, "verified TLS required by the configuration: "+ov.Reason)
		raise(RequiredVerified, "override")
	}
	return d
}

// Observe is told how a connection under d ended: cs is its TLS state
// (nil for cleartext), err why it failed (nil when the session was set up).
func (e *Engine) Observe(d Decision, cs *tls.ConnectionState, err error) {
	now := e.o.Now()
	reached := levelNone
	if err == nil && cs != nil {
		reached = levelTLS
		// A DANE match alone is not remembered as verified: a DANE-EE host
		// often has a certificate no CA signed, and were its TLSA records
		// to go, a remembered "verified" would defer all its mail.
		if d.Mode == RequiredVerified || e.webPKIOK(*cs, d.ServerName) == nil {
			reached = levelVerified
		}
	}
	if err == nil && d.Defer == "" {
		e.remember(d.domain, reached, now)
	}
	if e.o.TLSRPT {
		e.report(d, cs, err, now)
	}
}

// webPKIOK checks cs's chain against the CA pool and the MX host name.
func (e *Engine) webPKIOK(cs tls.ConnectionState, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: name, Roots: e.o.RootCAs, Intermediates: inter, CurrentTime: e.o.Now()})
	return err
}

// dane looks up mxHost's TLSA records once per Engine (one qrun pass); a
// temporary failure is not kept, so the next message asks again.
func (e *Engine) dane(ctx context.Context, domain, mxHost string) daneResult {
	key := domain + " " + mxHost
	e.mu.Lock()
	dr, ok := e.daneMemo[key]
	e.mu.Unlock()
	if ok {
		return dr
	}
	dr = e.r.lookupDANE(ctx, domain, mxHost, e.o.Port)
	if dr.state != daneTempFail {
		e.mu.Lock()
		e.daneMemo[key] = dr
		e.mu.Unlock()
	}
	return dr
}

// isDNSName: letters, digits, '-', '_' and inner dots; an address literal
// ("[192.0.2.1]", an IP) is not one, nor is anything that could name a
// path in the state directory.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 || s[0] == '.' || strings.Contains(s, "..") {
		return false
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			return false
		}
	}
	return true
}
