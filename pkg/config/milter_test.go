package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMilters(t *testing.T) {
	src := `hostname = "mx.example"

[[milter]]
name = "dkim"
socket = "unix:/run/opendkim/opendkim.sock"

[[milter]]
socket = "inet:127.0.0.1:11332"
timeout = "5s"
default_action = "accept"

[[milter]]
name = "v6"
socket = "inet6:[::1]:8891"

[[milter]]
name = "sendmail-style"
socket = "inet:8891@localhost"
`
	c, err := Parse("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Milters) != 4 {
		t.Fatalf("%d milters", len(c.Milters))
	}
	m := c.Milters
	if m[0].Name != "dkim" || m[0].Unix() != "/run/opendkim/opendkim.sock" || m[0].DefaultAction != "tempfail" ||
		m[0].Timeout.Duration != 30*time.Second || m[0].ConnectTimeout.Duration != 10*time.Second {
		t.Errorf("defaults: %+v", m[0])
	}
	if n, a := m[1].Network(); n != "tcp" || a != "127.0.0.1:11332" || m[1].Name != "inet:127.0.0.1:11332" ||
		m[1].Timeout.Duration != 5*time.Second || m[1].DefaultAction != "accept" {
		t.Errorf("second: %+v (%s %s)", m[1], n, a)
	}
	if n, a := m[2].Network(); n != "tcp6" || a != "[::1]:8891" {
		t.Errorf("inet6: %s %s", n, a)
	}
	if n, a := m[3].Network(); n != "tcp" || a != "localhost:8891" {
		t.Errorf("inet:port@host: %s %s", n, a)
	}
}

func TestMilterErrors(t *testing.T) {
	cases := []struct{ src, key string }{
		{"[[milter]]\nname = \"x\"\n", "milter[0].socket"},
		{"[[milter]]\nsocket = \"unix:relative.sock\"\n", "milter[0].socket"},
		{"[[milter]]\nsocket = \"tcp:1.2.3.4:5\"\n", "milter[0].socket"},
		{"[[milter]]\nsocket = \"inet:1.2.3.4\"\n", "milter[0].socket"},
		{"[[milter]]\nsocket = \"unix:/a\"\n[[milter]]\nsocket = \"unix:/b\"\ndefault_action = \"reject\"\n", "milter[1].default_action"},
		{"[[milter]]\nsocket = \"unix:/a\"\ntimeout = \"-1s\"\n", "milter[0].timeout"},
		{"[[milter]]\nname = \"a\"\nsocket = \"unix:/a\"\n[[milter]]\nname = \"a\"\nsocket = \"unix:/b\"\n", "milter[1].name"},
		{"[[milter]]\nsocket = \"unix:/a\"\nbogus = 1\n", "milter.bogus"},
	}
	for _, c := range cases {
		_, err := Parse("t", []byte(c.src))
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key || ce.Line == 0 {
			t.Errorf("%q: got %v, want an error for %s with its line", c.src, err, c.key)
		}
	}
	// The line is the one in the right table.
	_, err := Parse("t", []byte("[[milter]]\nsocket = \"unix:/a\"\n\n[[milter]]\nsocket = \"unix:/b\"\ndefault_action = \"no\"\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 6 {
		t.Errorf("got %v, want line 6", err)
	}
}

func TestChroot(t *testing.T) {
	c, err := Parse("t", []byte("[spool]\ndir = \"/var/lib/smtp-bs/jail/var/spool/smtp-bs\"\n[chroot]\ndir = \"/var/lib/smtp-bs/jail/\"\nrequired = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := c.JailSpool(); !ok || p != "/var/spool/smtp-bs" || c.Chroot.Dir != "/var/lib/smtp-bs/jail" {
		t.Errorf("JailSpool %q %v, dir %q", p, ok, c.Chroot.Dir)
	}
	if p, ok := Default().JailSpool(); !ok || p != "/var/spool/smtp-bs" {
		t.Errorf("without a chroot: %q %v", p, ok)
	}
	for _, c := range []struct{ src, key string }{
		{"[chroot]\ndir = \"/var/lib/jail\"\n", "spool.dir"}, // the default spool is outside
		{"[spool]\ndir = \"/jail\"\n[chroot]\ndir = \"/jail\"\n", "spool.dir"},
		{"[spool]\ndir = \"/jail2/spool\"\n[chroot]\ndir = \"/jail\"\n", "spool.dir"},
		{"[spool]\ndir = \"/jail/../spool\"\n[chroot]\ndir = \"/jail\"\n", "spool.dir"},
		{"[chroot]\ndir = \"jail\"\n", "chroot.dir"},
		{"[chroot]\ndir = \"/\"\n", "chroot.dir"},
		{"[chroot]\nrequired = true\n", "chroot.required"},
	} {
		_, err := Parse("t", []byte(c.src))
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != c.key {
			t.Errorf("%q: got %v, want an error for %s", c.src, err, c.key)
		} else if c.key == "spool.dir" && !strings.Contains(ce.Msg, "inside [chroot] dir") {
			t.Errorf("%q: %v", c.src, err)
		}
	}
}
