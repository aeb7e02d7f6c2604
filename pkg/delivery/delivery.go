// Package delivery hands queued messages to their next hop and reports
// each recipient's outcome: sent, deferred (try again) or failed (bounce).
//
// The runner depends only on the Deliverer interface. Transport is the SMTP
// implementation: it routes each recipient (a per-domain route, the
// smarthosts in order, or the domain's MX hosts), resolves the route to
// addresses, and runs one transaction per destination with go-smtp's
// client, RCPT by RCPT so that every recipient keeps its own reply.
package delivery

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/tlspolicy"
)

// Result is one recipient's outcome.
type Result struct {
	Rcpt   int          // index into the envelope's recipients
	Status spool.Status // Sent, Deferred or Failed
	Reply  string       // what the remote said, or why we could not ask
	// DSNOnward: the next hop offered DSN and got the recipient's NOTIFY,
	// so it reports success itself (RFC 3461 5.2.2).
	DSNOnward bool
	// Final: delivered into a mailbox here, not passed on.
	Final bool
	// Detail is for the log only, when Reply (which bounces quote to the
	// sender) must not say it: local paths, program names, alias targets.
	Detail string
}

// Destination is where a group of recipients goes in one transaction.
type Destination struct {
	// Key identifies the destination for grouping and per-destination
	// concurrency limits, e.g. "smarthost", "route:[relay]:25", "mx:example.org".
	Key string
	// Hops are tried in order (failover); each is "host:port" or "[host]:port".
	Hops []string
	// Relay is true for a smarthost or a route: every DNS problem is then
	// temporary, since the admin named the host.
	Relay bool
	// TLS is the policy: "none", "opportunistic", "required" or "implicit".
	TLS string
	// VerifyTLS demands a verified certificate whatever tls_verify says
	// (a REQUIRETLS message).
	VerifyTLS bool

	policy *tlspolicy.Decision // per MX host, set by withPolicy
}

// Deliverer routes recipients and delivers groups of them.
type Deliverer interface {
	// Route says where a recipient goes.
	Route(rcpt string) Destination
	// Deliver runs one transaction for env's recipients rcpts (indices into
	// env.Rcpts), all bound for dest, and returns one Result per recipient.
	Deliver(ctx context.Context, dest Destination, env *spool.Envelope, rcpts []int, data io.Reader) []Result
}

// Resolver is the part of net.Resolver delivery uses (a seam for tests).
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Options configure a Transport.
type Options struct {
	Hostname     string            // our EHLO name
	Smarthosts   []string          // tried in order; empty: MX delivery
	Routes       map[string]string // domain -> "host:port"; beats smarthosts
	SmarthostTLS string            // for smarthosts and routes
	MXTLS        string            // for MX delivery: "opportunistic" or "none"
	TLSVerify    bool              // verify certificates under "required"/"implicit"
	RootCAs      *x509.CertPool    // nil: the system's
	// SelfDomains are this host's own names: mail for them that no route
	// or smarthost takes would go to their MX, that is back here.
	SelfDomains []string
	AuthUser    string // AUTH to smarthosts and routes, only over TLS
	AuthPass    string
	// Hops override the TLS and AUTH settings above for one smarthost or
	// route, keyed by the hop as written in Smarthosts or Routes.
	Hops map[string]HopPolicy
	Port string // for MX hosts; "25"

	ConnectTimeout time.Duration // TCP connect
	// CommandTimeout bounds every other stage: the greeting, each
	// command's reply, the TLS handshake, and each write of the body.
	CommandTimeout time.Duration
	// DataTimeout bounds the wait for the reply after the final dot.
	DataTimeout time.Duration
	// MaxHosts bounds the addresses tried per attempt.
	MaxHosts int

	Resolver Resolver
	// TLSPolicyEngine decides TLS per MX host (DANE, MTA-STS, remembered
	// levels); nil: MXTLS alone.
	TLSPolicyEngine *tlspolicy.Engine
	Dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	// Log gets the events that are not one recipient's outcome (a TLS
	// downgrade); nil: none.
	Log *maillog.Logger
}

// HopPolicy is one smarthost's or route's own TLS and AUTH; a zero field
// keeps the Transport's.
type HopPolicy struct {
	TLS     string // "none", "opportunistic", "required" or "implicit"
	Verify  *bool
	RootCAs *x509.CertPool
	Auth    *Credentials // an empty User: no AUTH to this hop
}

// Transport delivers over SMTP. It is safe for concurrent use; DNS answers
// are cached for the Transport's lifetime (one qrun pass).
type Transport struct {
	o Options

	mu    sync.Mutex
	cache map[string]lookup
	idle  map[string][]*conn // connections kept for reuse (reuse.go)
}

type lookup struct {
	addrs []target
	st    spool.Status
	reply string
}

// New returns a Transport.
func New(o Options) *Transport {
	if o.Resolver == nil {
		o.Resolver = &net.Resolver{PreferGo: true}
	}
	if o.Port == "" {
		o.Port = "25"
	}
	if o.MaxHosts <= 0 {
		o.MaxHosts = 10
	}
	if o.SmarthostTLS == "" {
		o.SmarthostTLS = "opportunistic"
	}
	if o.MXTLS == "" {
		o.MXTLS = "opportunistic"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 30 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 5 * time.Minute
	}
	if o.DataTimeout <= 0 {
		o.DataTimeout = 10 * time.Minute // RFC 5321 4.5.3.2.6
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.ConnectTimeout}
		o.Dial = d.DialContext
	}
	return &Transport{o: o, cache: map[string]lookup{}}
}

// SetLog sends the Transport's own events (a TLS downgrade) to l; call it
// before the first delivery.
func (t *Transport) SetLog(l *maillog.Logger) { t.o.Log = l }

const loopKey = "loop:"

// Route says where rcpt goes: a route for its domain (or a parent domain
// written with a leading dot), else the smarthosts, else its MX.
func (t *Transport) Route(rcpt string) Destination {
	domain := strings.ToLower(rcpt[strings.LastIndexByte(rcpt, '@')+1:])
	if hop, ok := t.route(domain); ok {
		return Destination{Key: "route:" + hop, Hops: []string{hop}, Relay: true, TLS: t.o.SmarthostTLS}
	}
	if len(t.o.Smarthosts) > 0 {
		return Destination{Key: "smarthost", Hops: t.o.Smarthosts, Relay: true, TLS: t.o.SmarthostTLS}
	}
	for _, d := range t.o.SelfDomains {
		if address.EqualFold(d, domain) {
			return Destination{Key: loopKey + domain}
		}
	}
	return Destination{Key: "mx:" + domain, Hops: []string{domain}, TLS: t.o.MXTLS}
}

func (t *Transport) route(domain string) (string, bool) {
	if hop, ok := t.o.Routes[domain]; ok {
		return hop, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return "", false
		}
		d = d[i+1:]
		if hop, ok := t.o.Routes["."+d]; ok {
			return hop, true
		}
	}
}

// ReadAuthFile reads "user:password" (one line) from a file that only the
// run user may read; anything more open is refused, since the password
// would be readable by others.
func ReadAuthFile(path string) (user, pass string, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", fmt.Errorf("delivery: auth file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", "", fmt.Errorf("delivery: auth file %s is mode %v: it must be readable by its owner only (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("delivery: auth file: %w", err)
	}
	line := strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	user, pass, ok := strings.Cut(line, ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("delivery: auth file %s: want one line user:password", path)
	}
	return user, pass, nil
}
