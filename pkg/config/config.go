// Package config holds the one TOML file that smtp-bs and qrun share.
//
// Every key has an embedded default, so no file is needed to start. Load
// decodes the file into a Config pre-filled with those defaults, rejects
// unknown keys and bad values with the key's name and line, and validates
// the result once. Where "unset" and "empty" mean different things (an empty
// relay_networks means nobody may relay), the decoder's metadata tells them
// apart.
package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"smtp-bs/pkg/address"
)

// DefaultPath is where both programs look when -config is not given.
const DefaultPath = "/etc/smtp-bs/smtp-bs.toml"

// Config is the whole configuration of smtp-bs and qrun.
type Config struct {
	// Hostname is used in the greeting, Received headers, EHLO and bounces.
	Hostname string `toml:"hostname"`
	// RunAs is the user both programs drop to when started as root.
	RunAs string `toml:"run_as"`
	// Log is "auto", "journal", "syslog", "stderr", "none" or an absolute
	// file path.
	Log string `toml:"log"`

	Spool    Spool    `toml:"spool"`
	SMTP     SMTP     `toml:"smtp"`
	Delivery Delivery `toml:"delivery"`
	TCPWrap  TCPWrap  `toml:"tcpwrap"`
	TLS      TLS      `toml:"tls"`
	Auth     Auth     `toml:"auth"`
	Local    Local    `toml:"local"`
	// Milters are consulted in this order ([[milter]] tables).
	Milters []Milter `toml:"milter"`
	Chroot  Chroot   `toml:"chroot"`
	Proxy   Proxy    `toml:"proxy"`
	Sandbox Sandbox  `toml:"sandbox"`
	// Checks: DNSBL, SPF, DKIM, DMARC (checks.go).
	Checks Checks `toml:"checks"`
	// TLSPolicy is outbound TLS beyond mx_tls (config/tlspolicy.go).
	TLSPolicy TLSPolicy `toml:"tls_policy"`

	// Source names where the configuration came from, for messages.
	Source string `toml:"-"`
}

// Spool configures the durable queue.
type Spool struct {
	Dir string `toml:"dir"`
	// MinFreeBytes is the reserve: below it, new mail is refused with 452.
	MinFreeBytes int64 `toml:"min_free_bytes"`
}

// SMTP configures the inbound session policy and limits.
type SMTP struct {
	// LocalDomains are accepted from anyone; unset means [local] domains.
	LocalDomains    []string `toml:"local_domains"`
	RelayNetworks   []string `toml:"relay_networks"`
	MaxMessageBytes int64    `toml:"max_message_bytes"`
	MaxRecipients   int      `toml:"max_recipients"`
	MaxMessages     int      `toml:"max_messages"`
	MaxErrors       int      `toml:"max_errors"`
	MaxReceived     int      `toml:"max_received_headers"`
	CommandTimeout  Duration `toml:"command_timeout"`
	DataTimeout     Duration `toml:"data_timeout"`
	SessionTimeout  Duration `toml:"session_timeout"`
	// PregreetWait is how long smtp-bs waits, before its greeting, to see
	// whether a client outside relay_networks talks first (a spam bot's
	// habit). 0, the default, adds no delay: only input already pending
	// when the greeting is due is caught.
	PregreetWait Duration `toml:"pregreet_wait"`
	// RequireAuth is the submission policy of RFC 6409: MAIL is refused
	// (530 5.7.0) until the client has authenticated, and the envelope
	// sender must belong to the authenticated user ([auth.senders]).
	RequireAuth bool `toml:"require_auth"`

	// Parsed forms, filled by validate.
	relayPrefixes []netip.Prefix
}

// Delivery configures qrun.
type Delivery struct {
	// Smarthost is one "host:port" or a list tried in order; "[host]" skips
	// the MX lookup of host. Unset: deliver by MX.
	Smarthost    HostList          `toml:"smarthost"`
	SmarthostTLS string            `toml:"smarthost_tls"` // none, opportunistic, required, implicit
	MXTLS        string            `toml:"mx_tls"`        // none, opportunistic
	TLSVerify    bool              `toml:"tls_verify"`
	TLSCAFile    string            `toml:"tls_ca_file"`
	AuthFile     string            `toml:"auth_file"`
	Routes       map[string]string `toml:"routes"`
	// Hosts override, for one smarthost or route (keyed by the hop as
	// written in smarthost or routes), the TLS and AUTH keys above.
	Hosts    map[string]DeliveryHost `toml:"hosts"`
	MXPort   int                     `toml:"mx_port"`
	Resolver string                  `toml:"resolver"` // "" = the system's; else ip:port of a DNS server

	MaxConcurrency    int      `toml:"max_concurrency"`
	MaxPerDestination int      `toml:"max_per_destination"`
	DelayWarning      Duration `toml:"delay_warning"` // 0 disables
	Postmaster        string   `toml:"postmaster"`    // gets failed bounces, once

	ConnectTimeout Duration `toml:"connect_timeout"`
	// CommandTimeout bounds every stage but the connect and the final
	// reply: the greeting, each reply, the TLS handshake, each body write.
	CommandTimeout Duration `toml:"command_timeout"`
	DataTimeout    Duration `toml:"data_timeout"` // the reply after the final dot
	RetryFirst     Duration `toml:"retry_first"`
	RetryMax       Duration `toml:"retry_max"`
	Lifetime       Duration `toml:"lifetime"`
	Interval       Duration `toml:"interval"`
	MaxBouncesPass int      `toml:"max_bounces_per_pass"`
}

// namesHop says whether hop is written as a smarthost or a route.
func (d *Delivery) namesHop(hop string) bool {
	for _, h := range d.Smarthost {
		if h == hop {
			return true
		}
	}
	for _, h := range d.Routes {
		if h == hop {
			return true
		}
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// DeliveryHost is one smarthost's or route's own TLS and AUTH; what is
// unset comes from [delivery].
type DeliveryHost struct {
	TLS       string  `toml:"tls"` // as smarthost_tls
	TLSVerify *bool   `toml:"tls_verify"`
	TLSCAFile string  `toml:"tls_ca_file"`
	AuthFile  *string `toml:"auth_file"` // "": no AUTH to this host
}

// Local configures delivery on this host.
type Local struct {
	// Domains are delivered here (they are also accepted from anyone).
	// Empty: nothing is delivered locally; everything is relayed.
	Domains []string `toml:"domains"`
	// Aliases is an /etc/aliases-format file; missing means only the
	// built-in postmaster and MAILER-DAEMON aliases.
	Aliases string `toml:"aliases"`
	// Postmaster is where postmaster and MAILER-DAEMON go unless aliased.
	Postmaster string `toml:"postmaster"`
	// Mailbox is "mbox", "maildir" or "lmtp".
	Mailbox     string `toml:"mailbox"`
	MailSpool   string `toml:"mail_spool"`   // mbox directory, /var/mail
	MaildirRoot string `toml:"maildir_root"` // Maildir: <root>/<user>/
	LMTP        string `toml:"lmtp"`         // "unix:/path" or "host:port"
	// ProgramDir is the allow-list for |program aliases (the smrsh idea):
	// only programs directly in it run; "" refuses all.
	ProgramDir     string   `toml:"program_dir"`
	ProgramTimeout Duration `toml:"program_timeout"`
	// FileDir is the allow-list for /file aliases; "" refuses all.
	FileDir string `toml:"file_dir"`
	// SubmitTo is the host:port where the sendmail command hands local
	// submissions to smtp-bs over SMTP (the way sendmail 8.12's MSP relays
	// to the local MTA), so submitting needs no privilege.
	SubmitTo string `toml:"submit_to"`
}

// TCPWrap configures the hosts.allow/hosts.deny check.
type TCPWrap struct {
	Enabled   bool   `toml:"enabled"`
	AllowFile string `toml:"allow_file"`
	DenyFile  string `toml:"deny_file"`
	// Daemon is the name rules are matched against; "" means the program's
	// own name, as tcpd does.
	Daemon string `toml:"daemon"`
}

// TLS configures smtp-bs's STARTTLS and implicit TLS. The pair is read
// when each process starts (one per connection), so a renewed certificate
// is used from the next connection on; it is parsed at the handshake
// (session.LoadTLS).
type TLS struct {
	CertFile string `toml:"cert_file"` // PEM, the chain after the leaf
	KeyFile  string `toml:"key_file"`  // PEM, readable by run_as
	// Optional: when the pair cannot be loaded, serve without TLS (and log
	// why) instead of answering every client 421.
	Optional bool `toml:"optional"`
	// Implicit: TLS from the first byte (port 465, RFC 8314), as the
	// -tls-wrapper flag.
	Implicit bool `toml:"implicit"`
}

// Auth configures AUTH PLAIN and LOGIN, which are offered only over TLS.
type Auth struct {
	// CredentialsFile holds "user:hash" lines (bcrypt or argon2id, made by
	// smtp-bs -hash-password). Unset: no AUTH.
	CredentialsFile string `toml:"credentials_file"`
	// FailureDelay is waited before each failed AUTH is answered.
	FailureDelay Duration `toml:"failure_delay"`
	// MaxFailures failed AUTH attempts end the session (421).
	MaxFailures int `toml:"max_failures"`
	// The most one password check may cost: a credentials line above
	// these is refused at startup (every AUTH attempt pays one check).
	MaxHashMemoryKiB int `toml:"max_hash_memory_kib"` // argon2id m
	MaxHashPasses    int `toml:"max_hash_passes"`     // argon2id t
	MaxBcryptCost    int `toml:"max_bcrypt_cost"`
	// Senders maps a user to the envelope senders it may use: whole
	// addresses, or "@domain" for any address in a domain. A user without
	// an entry may use its own name when that is an address, or
	// name@<any local domain>.
	Senders map[string][]string `toml:"senders"`
}

// HasTLS reports whether a certificate is configured.
func (t *TLS) HasTLS() bool { return t.CertFile != "" }

// HostList is a TOML string or array of strings.
type HostList []string

// UnmarshalTOML accepts "host:port" or ["a:25", "b:25"].
func (h *HostList) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		*h = nil
		if x != "" {
			*h = HostList{x}
		}
		return nil
	case []any:
		*h = nil
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("want a string or a list of strings")
			}
			*h = append(*h, s)
		}
		return nil
	}
	return fmt.Errorf("want a string or a list of strings")
}

// Duration is a time.Duration written as "5m" or "1h30m" in the file.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"5m\", \"1h\"): %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in Go's notation.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Default returns the embedded defaults.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Config{
		Hostname: host,
		RunAs:    "mail",
		Log:      "auto",
		Spool: Spool{
			Dir:          "/var/spool/smtp-bs",
			MinFreeBytes: 64 << 20,
		},
		SMTP: SMTP{
			LocalDomains:    nil, // filled from Hostname in validate when unset
			RelayNetworks:   []string{"127.0.0.0/8", "::1/128"},
			MaxMessageBytes: 25 << 20,
			MaxRecipients:   100,
			MaxMessages:     100,
			MaxErrors:       10,
			MaxReceived:     100,
			CommandTimeout:  Duration{5 * time.Minute},
			DataTimeout:     Duration{10 * time.Minute},
			SessionTimeout:  Duration{30 * time.Minute},
		},
		TLSPolicy: defaultTLSPolicy(),
		Delivery: Delivery{
			ConnectTimeout: Duration{30 * time.Second},
			CommandTimeout: Duration{5 * time.Minute},
			DataTimeout:    Duration{10 * time.Minute},
			RetryFirst:     Duration{5 * time.Minute},
			RetryMax:       Duration{time.Hour},
			Lifetime:       Duration{5 * 24 * time.Hour},
			Interval:       Duration{10 * time.Minute},
			MaxBouncesPass: 1000,

			SmarthostTLS:      "opportunistic",
			MXTLS:             "opportunistic",
			TLSVerify:         true,
			MXPort:            25,
			MaxConcurrency:    20,
			MaxPerDestination: 5,
			DelayWarning:      Duration{4 * time.Hour},
		},
		Local: Local{
			Aliases:        "/etc/aliases",
			Postmaster:     "root",
			Mailbox:        "mbox",
			MailSpool:      "/var/mail",
			MaildirRoot:    "/var/mail/maildir",
			ProgramTimeout: Duration{time.Minute},
			SubmitTo:       "127.0.0.1:25",
		},
		TCPWrap: TCPWrap{
			Enabled:   true,
			AllowFile: "/etc/hosts.allow",
			DenyFile:  "/etc/hosts.deny",
		},
		Auth: Auth{
			FailureDelay:     Duration{2 * time.Second},
			MaxFailures:      3,
			MaxHashMemoryKiB: 16 << 10,
			MaxHashPasses:    8,
			MaxBcryptCost:    12,
		},
		Proxy:   defaultProxy(),
		Sandbox: Sandbox{Enabled: true},
	}
}

// Error is a configuration error; both programs exit 78 on it.
type Error struct {
	Source string
	Line   int // 0 when unknown
	Key    string
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads path. A missing file at the default path means "all defaults";
// a missing file that was asked for explicitly is an error.
func Load(path string, explicit bool) (*Config, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		c := Default()
		c.Source = "(embedded defaults)"
		return c, c.validate(nil, toml.MetaData{})
	}
	if err != nil {
		return nil, &Error{Source: path, Msg: err.Error()}
	}
	return Parse(path, src)
}

// Parse decodes src (named source in messages) over the defaults.
func Parse(source string, src []byte) (*Config, error) {
	c := Default()
	c.Source = source
	md, err := toml.NewDecoder(bytes.NewReader(src)).Decode(c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Source: source, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		// Type mismatches come as plain errors that still say where.
		if m := typeErrRe().FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{Source: source, Line: line, Key: m[2], Msg: m[3]}
		}
		return nil, &Error{Source: source, Msg: err.Error()}
	}
	// The decoder matches keys to fields regardless of case, so "Hostname"
	// and "hostname" would both set one field, the last one read winning:
	// every key of ours is lower case, and only map keys (route domains,
	// user names) may be written otherwise.
	for _, k := range md.Keys() {
		if k := mixedCaseKey(k); k != nil {
			return nil, &Error{Source: source, Line: lineOf(src, k), Key: k.String(), Msg: "unknown key (keys are lower case)"}
		}
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, &Error{Source: source, Line: lineOf(src, k), Key: k.String(), Msg: "unknown key" + misplacedHint(k)}
	}
	return c, c.validate(src, md)
}

// mixedCaseKey returns k if one of its parts that names a field of ours
// is not lower case; parts inside a map of the admin's names do not count.
func mixedCaseKey(k toml.Key) toml.Key {
	for i, part := range k {
		if i > 0 && (k[i-1] == "routes" || k[i-1] == "senders") {
			return nil
		}
		if part != strings.ToLower(part) {
			return k
		}
	}
	return nil
}

// typeErrRe is compiled only when a config has an error: smtp-bs reads
// its config at every connection.
var typeErrRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
})

func (c *Config) validate(src []byte, md toml.MetaData) error {
	bad := func(msg string, key ...string) error {
		return &Error{Source: c.Source, Line: lineOf(src, key), Key: strings.Join(key, "."), Msg: msg}
	}
	c.Hostname = strings.TrimSuffix(strings.TrimSpace(c.Hostname), ".")
	if c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t\r\n[]<>@") {
		return bad("must be a host name", "hostname")
	}
	if c.RunAs == "" {
		return bad("must name a user", "run_as")
	}
	if c.RunAs == "root" || c.RunAs == "0" {
		return bad("must not be root: smtp-bs never runs as root", "run_as")
	}
	switch c.Log {
	case "auto", "journal", "syslog", "stderr", "none":
	default:
		if !strings.HasPrefix(c.Log, "/") {
			return bad(`must be "auto", "journal", "syslog", "stderr", "none" or an absolute file path`, "log")
		}
	}
	if !strings.HasPrefix(c.Spool.Dir, "/") {
		return bad("must be an absolute path", "spool", "dir")
	}
	if c.Spool.MinFreeBytes < 0 {
		return bad("must not be negative", "spool", "min_free_bytes")
	}
	// Unset local_domains: exactly the domains delivered here ([local]
	// domains, added below). Accepting a domain that is neither delivered
	// here nor routed on would send its mail to its MX: back to us.
	if !md.IsDefined("smtp", "local_domains") {
		c.SMTP.LocalDomains = nil
	}
	for i, d := range c.SMTP.LocalDomains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" || strings.ContainsAny(d, " \t@[]<>") {
			return bad(fmt.Sprintf("%q is not a domain", c.SMTP.LocalDomains[i]), "smtp", "local_domains")
		}
		c.SMTP.LocalDomains[i] = d
	}
	c.SMTP.relayPrefixes = nil
	for _, n := range c.SMTP.RelayNetworks {
		p, err := parseNetwork(n)
		if err != nil {
			return bad(err.Error(), "smtp", "relay_networks")
		}
		c.SMTP.relayPrefixes = append(c.SMTP.relayPrefixes, p)
	}
	positive := []struct {
		v   int64
		key string
	}{
		{c.SMTP.MaxMessageBytes, "max_message_bytes"},
		{int64(c.SMTP.MaxRecipients), "max_recipients"},
		{int64(c.SMTP.MaxMessages), "max_messages"},
		{int64(c.SMTP.MaxErrors), "max_errors"},
		{int64(c.SMTP.MaxReceived), "max_received_headers"},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return bad("must be positive", "smtp", p.key)
		}
	}
	durations := []struct {
		d   Duration
		key []string
	}{
		{c.SMTP.CommandTimeout, []string{"smtp", "command_timeout"}},
		{c.SMTP.DataTimeout, []string{"smtp", "data_timeout"}},
		{c.SMTP.SessionTimeout, []string{"smtp", "session_timeout"}},
		{c.Delivery.ConnectTimeout, []string{"delivery", "connect_timeout"}},
		{c.Delivery.CommandTimeout, []string{"delivery", "command_timeout"}},
		{c.Delivery.DataTimeout, []string{"delivery", "data_timeout"}},
		{c.Delivery.RetryFirst, []string{"delivery", "retry_first"}},
		{c.Delivery.RetryMax, []string{"delivery", "retry_max"}},
		{c.Delivery.Lifetime, []string{"delivery", "lifetime"}},
		{c.Delivery.Interval, []string{"delivery", "interval"}},
	}
	for _, d := range durations {
		if d.d.Duration <= 0 {
			return bad("must be a positive duration", d.key...)
		}
	}
	if c.Delivery.DelayWarning.Duration < 0 {
		return bad("must not be negative (0 turns delay warnings off)", "delivery", "delay_warning")
	}
	if w := c.SMTP.PregreetWait.Duration; w < 0 || w >= c.SMTP.CommandTimeout.Duration {
		return bad("must be 0 or more and shorter than command_timeout", "smtp", "pregreet_wait")
	}
	if c.Delivery.RetryMax.Duration < c.Delivery.RetryFirst.Duration {
		return bad("must not be shorter than retry_first", "delivery", "retry_max")
	}
	if c.Delivery.MaxBouncesPass <= 0 {
		return bad("must be positive", "delivery", "max_bounces_per_pass")
	}
	for _, h := range c.Delivery.Smarthost {
		if _, _, err := SplitHostPort(h); err != nil {
			return bad(err.Error(), "delivery", "smarthost")
		}
	}
	for dom, h := range c.Delivery.Routes {
		if _, _, err := SplitHostPort(h); err != nil || dom == "" {
			return bad(fmt.Sprintf("route %q = %q: %v", dom, h, err), "delivery", "routes")
		}
	}
	switch c.Delivery.SmarthostTLS {
	case "none", "opportunistic", "required", "implicit":
	default:
		return bad(`must be "none", "opportunistic", "required" or "implicit"`, "delivery", "smarthost_tls")
	}
	for hop, h := range c.Delivery.Hosts {
		if !c.Delivery.namesHop(hop) {
			return bad(fmt.Sprintf("%q is neither a smarthost nor a route (write it as there)", hop), "delivery", "hosts")
		}
		switch h.TLS {
		case "", "none", "opportunistic", "required", "implicit":
		default:
			return bad(`must be "none", "opportunistic", "required" or "implicit"`, "delivery", "hosts", hop, "tls")
		}
		for _, p := range []struct{ v, key string }{{h.TLSCAFile, "tls_ca_file"}, {deref(h.AuthFile), "auth_file"}} {
			if p.v != "" && !strings.HasPrefix(p.v, "/") {
				return bad("must be an absolute path", "delivery", "hosts", hop, p.key)
			}
		}
	}
	switch c.Delivery.MXTLS {
	case "none", "opportunistic":
	default:
		return bad(`must be "none" or "opportunistic"`, "delivery", "mx_tls")
	}
	if c.Delivery.MXPort <= 0 || c.Delivery.MXPort > 65535 {
		return bad("must be a port number", "delivery", "mx_port")
	}
	if r := c.Delivery.Resolver; r != "" {
		if _, _, err := SplitHostPort(r); err != nil {
			return bad("must be ip:port of a DNS server", "delivery", "resolver")
		}
	}
	if c.Delivery.MaxConcurrency <= 0 {
		return bad("must be positive", "delivery", "max_concurrency")
	}
	if c.Delivery.MaxPerDestination <= 0 {
		return bad("must be positive", "delivery", "max_per_destination")
	}
	for _, p := range []struct{ v, key string }{{c.Delivery.TLSCAFile, "tls_ca_file"}, {c.Delivery.AuthFile, "auth_file"}} {
		if p.v != "" && !strings.HasPrefix(p.v, "/") {
			return bad("must be an absolute path", "delivery", p.key)
		}
	}
	if c.Delivery.Postmaster != "" && !strings.Contains(c.Delivery.Postmaster, "@") {
		return bad("must be an address (user@domain)", "delivery", "postmaster")
	}
	if c.TCPWrap.Enabled {
		if !strings.HasPrefix(c.TCPWrap.AllowFile, "/") {
			return bad("must be an absolute path", "tcpwrap", "allow_file")
		}
		if !strings.HasPrefix(c.TCPWrap.DenyFile, "/") {
			return bad("must be an absolute path", "tcpwrap", "deny_file")
		}
	}
	if err := c.validateLocal(bad); err != nil {
		return err
	}
	if err := c.validateProxy(bad); err != nil {
		return err
	}
	if strings.ContainsAny(c.TCPWrap.Daemon, " \t,:") {
		return bad("must be one word", "tcpwrap", "daemon")
	}
	if err := c.validateMilters(src); err != nil {
		return err
	}
	if err := c.validateSandbox(bad); err != nil {
		return err
	}
	if err := c.validateChroot(bad); err != nil {
		return err
	}
	if err := c.validateChecks(bad); err != nil {
		return err
	}
	if err := c.validateTLSPolicy(bad); err != nil {
		return err
	}
	return c.validateTLSAuth(bad)
}

func (c *Config) validateTLSAuth(bad func(msg string, key ...string) error) error {
	for _, p := range []struct{ v, key string }{{c.TLS.CertFile, "cert_file"}, {c.TLS.KeyFile, "key_file"}} {
		if p.v != "" && !strings.HasPrefix(p.v, "/") {
			return bad("must be an absolute path", "tls", p.key)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		if c.TLS.CertFile == "" {
			return bad("key_file is set: cert_file must be set too", "tls", "cert_file")
		}
		return bad("cert_file is set: key_file must be set too", "tls", "key_file")
	}
	if c.TLS.Implicit && c.TLS.CertFile == "" {
		return bad("implicit TLS needs cert_file and key_file", "tls", "implicit")
	}
	if f := c.Auth.CredentialsFile; f != "" && !strings.HasPrefix(f, "/") {
		return bad("must be an absolute path", "auth", "credentials_file")
	}
	if d := c.Auth.FailureDelay.Duration; d < 0 || d >= c.SMTP.CommandTimeout.Duration {
		return bad("must be 0 or more and shorter than [smtp] command_timeout", "auth", "failure_delay")
	}
	if c.Auth.MaxFailures <= 0 {
		return bad("must be positive", "auth", "max_failures")
	}
	for _, k := range []struct {
		v, lo, hi int
		key       string
	}{{c.Auth.MaxHashMemoryKiB, 8, 1 << 20, "max_hash_memory_kib"}, {c.Auth.MaxHashPasses, 1, 64, "max_hash_passes"}, {c.Auth.MaxBcryptCost, 4, 16, "max_bcrypt_cost"}} {
		if k.v < k.lo || k.v > k.hi {
			return bad(fmt.Sprintf("must be %d to %d", k.lo, k.hi), "auth", k.key)
		}
	}
	for user, senders := range c.Auth.Senders {
		if user == "" || strings.ContainsAny(user, ": \t") {
			return bad(fmt.Sprintf("%q is not a user name", user), "auth", "senders", user)
		}
		for _, s := range senders {
			_, domain, ok := strings.Cut(s, "@")
			if !ok || domain == "" || strings.ContainsAny(s, " \t<>") || strings.Contains(domain, "@") {
				return bad(fmt.Sprintf("%q is neither an address nor @domain", s), "auth", "senders", user)
			}
		}
	}
	if c.SMTP.RequireAuth {
		if c.Auth.CredentialsFile == "" {
			return bad("needs [auth] credentials_file: nobody could send", "smtp", "require_auth")
		}
		if c.TLS.CertFile == "" {
			return bad("needs [tls] cert_file and key_file: AUTH is offered only over TLS", "smtp", "require_auth")
		}
	}
	return nil
}

func (c *Config) validateLocal(bad func(string, ...string) error) error {
	l := &c.Local
	for i, d := range l.Domains {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d == "" || strings.ContainsAny(d, " \t@[]<>") {
			return bad(fmt.Sprintf("%q is not a domain", l.Domains[i]), "local", "domains")
		}
		l.Domains[i] = d
		if !c.SMTP.IsLocalDomain(d) {
			c.SMTP.LocalDomains = append(c.SMTP.LocalDomains, d)
		}
	}
	switch l.Mailbox {
	case "mbox", "maildir":
	case "lmtp":
		if l.LMTP == "" {
			return bad(`mailbox = "lmtp" needs lmtp = "unix:/path" or "host:port"`, "local", "lmtp")
		}
	default:
		return bad(`must be "mbox", "maildir" or "lmtp"`, "local", "mailbox")
	}
	for _, p := range []struct{ v, key string }{{l.Aliases, "aliases"}, {l.MailSpool, "mail_spool"}, {l.MaildirRoot, "maildir_root"},
		{l.ProgramDir, "program_dir"}, {l.FileDir, "file_dir"}} {
		if p.v != "" && !strings.HasPrefix(p.v, "/") {
			return bad("must be an absolute path", "local", p.key)
		}
	}
	if l.LMTP != "" && !strings.HasPrefix(l.LMTP, "unix:/") {
		if _, _, err := SplitHostPort(l.LMTP); err != nil {
			return bad(`must be "unix:/path" or "host:port"`, "local", "lmtp")
		}
	}
	if l.Postmaster == "" || strings.ContainsAny(l.Postmaster, " \t,") {
		return bad("must name a user or an address", "local", "postmaster")
	}
	if l.ProgramTimeout.Duration <= 0 {
		return bad("must be a positive duration", "local", "program_timeout")
	}
	if h, p, err := net.SplitHostPort(l.SubmitTo); err != nil || h == "" || !validPort(p) {
		return bad(`must be "host:port", e.g. "127.0.0.1:25"`, "local", "submit_to")
	}
	return nil
}

// validPort reports whether p is a decimal port number from 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535 && strings.Trim(p, "0123456789") == ""
}

// IsLocalDelivery reports whether mail for domain is delivered on this host.
func (l *Local) IsLocalDelivery(domain string) bool {
	for _, d := range l.Domains {
		if address.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// parseNetwork accepts "10.0.0.0/8", "::1/128" and a bare address (one host).
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a network (want e.g. \"192.0.2.0/24\")", s)
		}
		if p.Masked() != p {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %q?)", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or network", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// RelayAllowed reports whether a client at addr is in relay_networks.
func (s *SMTP) RelayAllowed(addr netip.Addr) bool { return inNetworks(s.relayPrefixes, addr) }

// IsLocalDomain reports whether domain (any case, no trailing dot) is local.
func (s *SMTP) IsLocalDomain(domain string) bool {
	for _, d := range s.LocalDomains {
		if address.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// lineOf finds the line that sets key in src, for error messages. It knows
// enough TOML to follow [table] headers; 0 means not found.
func lineOf(src []byte, key []string) int {
	if len(src) == 0 || len(key) == 0 {
		return 0
	}
	table, name := strings.Join(key[:len(key)-1], "."), key[len(key)-1]
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			h := strings.Trim(line, "[] \t")
			if i := strings.IndexByte(h, '#'); i >= 0 {
				h = strings.TrimSpace(strings.Trim(h[:i], "[] \t"))
			}
			cur = h
			if len(key) == 1 || h != table {
				if strings.Join(key, ".") == h {
					return n
				}
			}
			continue
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `"`)
		if (cur == table && k == name) || (cur == "" && k == strings.Join(key, ".")) {
			return n
		}
	}
	return 0
}

// SplitHostPort splits "host:port", "[v6]:port" or "host" (port 25).
func SplitHostPort(s string) (host, port string, err error) {
	if s == "" {
		return "", "", errors.New("empty host")
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") || !strings.Contains(s, ":") {
		return strings.Trim(s, "[]"), "25", nil
	}
	i := strings.LastIndexByte(s, ':')
	host, port = strings.Trim(s[:i], "[]"), s[i+1:]
	if host == "" || port == "" || strings.Trim(port, "0123456789") != "" {
		return "", "", fmt.Errorf("%q is not host:port", s)
	}
	return host, port, nil
}
