package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestEmptyFileIsAllDefaults(t *testing.T) {
	c, err := Parse("empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.RunAs != "mail" || c.Spool.Dir != "/var/spool/smtp-bs" || c.SMTP.MaxRecipients != d.SMTP.MaxRecipients ||
		c.Delivery.Lifetime.Duration != 120*time.Hour || c.Delivery.RetryFirst.Duration != 5*time.Minute {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.SMTP.LocalDomains) != 0 {
		t.Errorf("local_domains default = %q, want none (nothing is delivered here by default)", c.SMTP.LocalDomains)
	}
	c, _ = Parse("t", []byte("[local]\ndomains = [\"Mx.Example\", \"localhost\"]\n"))
	if got := strings.Join(c.SMTP.LocalDomains, ","); got != "mx.example,localhost" {
		t.Errorf("local_domains from [local] domains = %q", got)
	}
	if !c.SMTP.RelayAllowed(netip.MustParseAddr("127.0.0.1")) || !c.SMTP.RelayAllowed(netip.MustParseAddr("::ffff:127.0.0.9")) ||
		!c.SMTP.RelayAllowed(netip.MustParseAddr("::1")) || c.SMTP.RelayAllowed(netip.MustParseAddr("192.0.2.1")) {
		t.Error("default relay_networks is not loopback only")
	}
}

func TestUnsetAndEmptyDiffer(t *testing.T) {
	c, err := Parse("t", []byte("[smtp]\nrelay_networks = []\nlocal_domains = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.RelayAllowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("empty relay_networks must mean nobody may relay")
	}
	if len(c.SMTP.LocalDomains) != 0 {
		t.Errorf("empty local_domains became %v", c.SMTP.LocalDomains)
	}
}

func TestValues(t *testing.T) {
	c, err := Parse("t", []byte(`hostname = "MX.Example.ORG."
[smtp]
relay_networks = ["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"]
local_domains = ["Example.ORG."]
command_timeout = "90s"
[delivery]
smarthost = "[2001:db8::1]:587"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "MX.Example.ORG" || !c.SMTP.IsLocalDomain("example.org") || c.SMTP.CommandTimeout.Duration != 90*time.Second {
		t.Errorf("got %+v", c)
	}
	for addr, want := range map[string]bool{"192.0.2.200": true, "2001:db8::5": true, "198.51.100.7": true, "198.51.100.8": false, "127.0.0.1": false} {
		if got := c.SMTP.RelayAllowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("RelayAllowed(%s) = %v", addr, got)
		}
	}
}

// Local domains match with ASCII letters folded and nothing else: Unicode
// folding takes "ſ" (U+017F) for "s" and the Kelvin sign for "k", and a
// recipient at such a domain would pass the relay check as local while
// routing (which lower-cases) sent it elsewhere (found by a red-team run).
func TestLocalDomainsFoldASCIIOnly(t *testing.T) {
	c, err := Parse("t", []byte(`hostname = "mx.local.test"
[smtp]
local_domains = ["local.test", "kilo.test"]
[local]
domains = ["local.test"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for domain, want := range map[string]bool{
		"local.test": true, "LOCAL.Test": true, "kilo.test": true, "KILO.TEST": true,
		"local.te\u017ft": false, "\u212ailo.test": false, "local.test.": false, "xlocal.test": false,
	} {
		if got := c.SMTP.IsLocalDomain(domain); got != want {
			t.Errorf("IsLocalDomain(%q) = %v", domain, got)
		}
		if got := c.Local.IsLocalDelivery(domain); got != (want && !strings.HasPrefix(strings.ToLower(domain), "k")) {
			t.Errorf("IsLocalDelivery(%q) = %v", domain, got)
		}
	}
}

func TestErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		src, key string
		line     int
	}{
		{"bogus = 1\n", "bogus", 1},
		{"hostname = \"a.example\"\nHostName = \"b.example\"\n", "HostName", 2},
		{"[SMTP]\nmax_errors = 5\n", "SMTP", 1},
		{"[smtp]\n# comment\nmax_recipents = 5\n", "smtp.max_recipents", 3},
		{"[smtp]\nrelay_networks = [\"10.0.0.1/8\"]\n", "smtp.relay_networks", 2},
		{"[smtp]\nrelay_networks = [\"example.com\"]\n", "smtp.relay_networks", 2},
		{"[smtp]\nmax_errors = 0\n", "smtp.max_errors", 2},
		{"[delivery]\nretry_first = \"2h\"\n", "delivery.retry_max", 0},
		{"[delivery]\nsmarthost = \"host:port\"\n", "delivery.smarthost", 2},
		{"run_as = \"root\"\n", "run_as", 1},
		{"log = \"relative/file\"\n", "log", 1},
		{"[spool]\ndir = \"spool\"\n", "spool.dir", 2},
		{"[smtp]\nmax_recipients = \"many\"\n", "", 2},
		{"[smtp]\ndata_timeout = \"forever\"\n", "", 2},
	}
	for _, c := range cases {
		_, err := Parse("f.toml", []byte(c.src))
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%q: want *Error, got %v", c.src, err)
			continue
		}
		if c.key != "" && ce.Key != c.key {
			t.Errorf("%q: key %q, want %q (%v)", c.src, ce.Key, c.key, err)
		}
		if c.line != 0 && ce.Line != c.line {
			t.Errorf("%q: line %d, want %d (%v)", c.src, ce.Line, c.line, err)
		}
	}
}

func TestMissingFile(t *testing.T) {
	if _, err := Load("/nonexistent/smtp-bs.toml", false); err != nil {
		t.Errorf("missing default file must mean defaults: %v", err)
	}
	if _, err := Load("/nonexistent/smtp-bs.toml", true); err == nil {
		t.Error("a missing file given with -config must be an error")
	}
}
