package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const busy = `hostname = "mx.example.org"
log = "stderr"
[smtp]
relay_networks = []
max_recipients = 7
command_timeout = "90s"
[delivery]
smarthost = ["a.example:25", "[b.example]:587"]
lifetime = "72h"
[delivery.routes]
"example.com" = "relay.internal:25"
".sub.example" = "x.example:2525"
[delivery.hosts."[b.example]:587"]
tls = "required"
tls_verify = false
auth_file = ""
[delivery.hosts."relay.internal:25"]
tls_ca_file = "/etc/ssl/relay.pem"
[tls_policy.domains."example.net"]
policy = "exempt"
reason = "a \"broken\" certificate"
[tls_policy.domains."example.com"]
policy = "verified"
[auth.senders]
alice = ["alice@example.org", "@alice.example"]
[local]
domains = ["example.org", "localhost"]
postmaster = "ann"
[[milter]]
socket = "unix:/run/a.sock"
[[milter]]
name = "b"
socket = "inet:127.0.0.1:8891"
default_action = "accept"
[chroot]
dir = "/var/lib/jail"
[spool]
dir = "/var/lib/jail/spool"
`

func effective(t *testing.T, c *Config, changed bool) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteEffective(&b, c, changed); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// normal makes nil and empty slices and maps alike: the decoder may give
// either for "[]", and they mean the same.
func normal(c *Config) *Config {
	n := *c
	n.Source = ""
	fix := func(s *[]string) {
		if len(*s) == 0 {
			*s = nil
		}
	}
	fix(&n.SMTP.LocalDomains)
	fix(&n.SMTP.RelayNetworks)
	fix(&n.Local.Domains)
	if len(n.Delivery.Smarthost) == 0 {
		n.Delivery.Smarthost = nil
	}
	if len(n.Delivery.Routes) == 0 {
		n.Delivery.Routes = nil
	}
	if len(n.Auth.Senders) == 0 {
		n.Auth.Senders = nil
	}
	// %+v prints the pointers in a DeliveryHost as addresses: the round
	// trip compares these two maps with reflect.DeepEqual instead.
	n.Delivery.Hosts = nil
	n.TLSPolicy.Domains = nil
	n.SMTP.relayPrefixes = nil
	return &n
}

func nilIfEmpty[M ~map[string]V, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

// Both printouts, all keys and only the changed ones, load back to the
// same configuration.
func TestEffectiveRoundTrip(t *testing.T) {
	for _, src := range []string{"", busy} {
		orig, err := Parse("orig", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, changed := range []bool{false, true} {
			out := effective(t, orig, changed)
			back, err := Parse("back", []byte(out))
			if err != nil {
				t.Fatalf("changed=%v: the printout does not load: %v\n%s", changed, err, out)
			}
			// %+v prints a nil and an empty slice or map alike, which
			// TOML cannot tell apart either ("unset" is decided by the
			// decoder's metadata, not by the value).
			if fmt.Sprintf("%+v", normal(orig)) != fmt.Sprintf("%+v", normal(back)) {
				t.Errorf("changed=%v: round trip differs\norig %+v\nback %+v\n%s", changed, normal(orig), normal(back), out)
			}
			// Tables of structs: DeepEqual follows the pointers (an unset
			// tls_verify is not false) and tells nil from empty, so both
			// sides count "no entries" as nil.
			for _, m := range []struct{ orig, back any }{
				{nilIfEmpty(orig.Delivery.Hosts), nilIfEmpty(back.Delivery.Hosts)},
				{nilIfEmpty(orig.TLSPolicy.Domains), nilIfEmpty(back.TLSPolicy.Domains)},
			} {
				if !reflect.DeepEqual(m.orig, m.back) {
					t.Errorf("changed=%v: round trip differs\norig %#v\nback %#v\n%s", changed, m.orig, m.back, out)
				}
			}
			_, body, _ := strings.Cut(out, "\n") // the first line names the source
			if again := effective(t, back, changed); !strings.HasSuffix(again, "\n"+body) {
				t.Errorf("changed=%v: not a fixed point:\n%s\n---\n%s", changed, out, again)
			}
		}
	}
}

func TestEffectiveAllHasEveryKey(t *testing.T) {
	c, _ := Parse("t", []byte(busy))
	out := effective(t, c, false)
	section := ""
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			seen[section] = true
		case strings.Contains(line, " = ") && !strings.HasPrefix(line, "#"):
			k, _, _ := strings.Cut(line, " = ")
			if section != "" {
				k = section + "." + k
			}
			seen[k] = true
		}
	}
	for _, k := range Keys() {
		if !seen[k] {
			t.Errorf("key %s missing from the effective configuration:\n%s", k, out)
		}
	}
}

func TestEffectiveChangedOnly(t *testing.T) {
	c, _ := Parse("t", []byte("hostname = \"mx.example.org\"\n[smtp]\nmax_recipients = 7\n[delivery]\nlifetime = \"120h\"\n"))
	out := effective(t, c, true)
	for _, want := range []string{"hostname = \"mx.example.org\"", "[smtp]\nmax_recipients = 7\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	// lifetime is set, but to its default: postconf -n leaves it out too.
	for _, not := range []string{"lifetime", "[delivery]", "run_as", "[tcpwrap]"} {
		if strings.Contains(out, not) {
			t.Errorf("%q printed though it is the default:\n%s", not, out)
		}
	}
}

func TestKeys(t *testing.T) {
	k := Keys()
	for _, want := range []string{"hostname", "spool.dir", "smtp.max_received_headers", "delivery.smarthost", "delivery.routes",
		"auth.senders", "milter.socket", "milter.default_action", "chroot.required", "local.submit_to", "tls.implicit"} {
		if !slices.Contains(k, want) {
			t.Errorf("Keys() lacks %s: %v", want, k)
		}
	}
	if slices.Contains(k, "source") || slices.Contains(k, "smtp.relay_prefixes") {
		t.Errorf("Keys() lists a field that is not a key: %v", k)
	}
}

func TestMisplacedKey(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"smarthost = \"a:25\"\n", "it belongs in [delivery] (write it after the [delivery] line)"},
		{"[smtp]\nsmarthost = \"a:25\"\n", "smarthost is not a key of [smtp]: it belongs in [delivery]"},
		{"[delivery]\nhostname = \"x\"\n", "it belongs in the top level"},
		{"[smtp]\nnosuchkey = 1\n", "unknown key"},
	} {
		_, err := Parse("t", []byte(tc.src))
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want it to say %q", tc.src, err, tc.want)
		}
		if ce != nil && ce.Line == 0 {
			t.Errorf("%q: no line in %v", tc.src, err)
		}
	}
	if _, err := Parse("t", []byte("[smtp]\nnosuchkey = 1\n")); strings.Contains(err.Error(), "belongs") {
		t.Errorf("a key of nowhere got a hint: %v", err)
	}
}

func TestShowFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want ShowFlag
	}{{nil, ""}, {[]string{"-show-config"}, "all"}, {[]string{"-show-config=changed"}, "changed"}} {
		var f ShowFlag
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Var(&f, "show-config", "")
		if err := fs.Parse(tc.args); err != nil || f != tc.want {
			t.Errorf("%v: got %q, %v; want %q", tc.args, f, err, tc.want)
		}
	}
	var f ShowFlag
	if f.Set("bogus") == nil {
		t.Error("-show-config=bogus accepted")
	}
}
