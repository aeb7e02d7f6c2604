package config

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: the loader never panics; every refusal is a *Error that names
// a line of the file (or none); what it accepts has passed validation.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"hostname = \"mx.example.org\"\nrun_as = \"mail\"\nlog = \"syslog\"\n[spool]\ndir = \"/var/spool/smtp-bs\"\nmin_free_bytes = 1000000\n",
		"[smtp]\nlocal_domains = [\"example.org\", \"Example.NET.\"]\nrelay_networks = [\"10.0.0.0/8\", \"::1\", \"192.0.2.1\"]\nmax_message_bytes = 1000\n",
		"[smtp]\nrelay_networks = []\ncommand_timeout = \"1m\"\ndata_timeout = \"2m\"\nsession_timeout = \"5m\"\npregreet_wait = \"250ms\"\n",
		"[delivery]\nsmarthost = \"relay.example.org:587\"\nretry_first = \"1m\"\nretry_max = \"1h\"\nlifetime = \"5d\"\n",
		"[delivery]\nsmarthost = [\"[10.0.0.1]:25\", \"b.example:2525\"]\nmax_concurrency = 4\n",
		"[tcpwrap]\nenabled = true\nallow_file = \"/etc/hosts.allow\"\ndeny_file = \"/etc/hosts.deny\"\ndaemon = \"smtp-bs\"\n",
		"hostname = \"bad host\"\n", "run_as = \"root\"\n", "[smtp]\nmax_recipients = -1\n", "[smtp]\nrelay_networks = [\"10.0.0.1/8\"]\n",
		"unknown = 1\n", "[spool]\ndir = 5\n", "[smtp\n", "hostname = \"a\"\nhostname = \"b\"\n", "[smtp]\ncommand_timeout = \"forever\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("fuzz.toml", src)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *config.Error", err, err)
			}
			if ce.Source != "fuzz.toml" || ce.Msg == "" {
				t.Fatalf("error without source or message: %+v", ce)
			}
			if lines := bytes.Count(src, []byte("\n")) + 1; ce.Line < 0 || ce.Line > lines {
				t.Fatalf("error names line %d of a %d-line file: %v", ce.Line, lines, err)
			}
			return
		}
		switch {
		case c.Hostname == "" || strings.ContainsAny(c.Hostname, " \t\r\n"):
			t.Fatalf("accepted hostname %q", c.Hostname)
		case c.RunAs == "" || c.RunAs == "root" || c.RunAs == "0":
			t.Fatalf("accepted run_as %q", c.RunAs)
		case !strings.HasPrefix(c.Spool.Dir, "/"):
			t.Fatalf("accepted spool dir %q", c.Spool.Dir)
		case c.SMTP.MaxMessageBytes <= 0 || c.SMTP.MaxRecipients <= 0 || c.SMTP.MaxErrors <= 0:
			t.Fatalf("accepted a limit that is not positive: %+v", c.SMTP)
		case c.SMTP.CommandTimeout.Duration <= 0 || c.SMTP.DataTimeout.Duration <= 0 || c.SMTP.SessionTimeout.Duration <= 0:
			t.Fatalf("accepted a timeout that is not positive: %+v", c.SMTP)
		case c.SMTP.PregreetWait.Duration < 0 || c.SMTP.PregreetWait.Duration >= c.SMTP.CommandTimeout.Duration:
			t.Fatalf("accepted pregreet_wait %v", c.SMTP.PregreetWait)
		}
		// The same file gives the same configuration.
		again, err := Parse("fuzz.toml", src)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("two parses of one file differ")
		}
	})
}
