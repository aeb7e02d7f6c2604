package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Milter is one [[milter]] table: a mail filter smtp-bs consults over the
// Sendmail milter protocol (OpenDKIM, rspamd, clamav-milter, ...), in the
// order the tables appear.
type Milter struct {
	// Name appears in the log; default: the socket.
	Name string `toml:"name"`
	// Socket is "unix:/path" (or "local:/path"), "inet:host:port",
	// "inet6:host:port" or Sendmail's "inet:port@host".
	Socket string `toml:"socket"`
	// ConnectTimeout bounds the connection and the option negotiation.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// Timeout bounds each command's round trip.
	Timeout Duration `toml:"timeout"`
	// DefaultAction applies when the milter cannot be reached or fails
	// mid-session (Postfix's milter_default_action): "tempfail" answers
	// 451 4.7.1 to the rest of the session, "accept" goes on without it.
	DefaultAction string `toml:"default_action"`
}

// Milter defaults.
const (
	DefaultMilterConnectTimeout = 10 * time.Second
	DefaultMilterTimeout        = 30 * time.Second
)

// Network returns the socket as net.Dial wants it.
func (m *Milter) Network() (network, address string) {
	n, a, _ := parseMilterSocket(m.Socket)
	return n, a
}

// Unix returns the path of a unix socket, "" for inet sockets.
func (m *Milter) Unix() string {
	if n, a := m.Network(); n == "unix" {
		return a
	}
	return ""
}

func parseMilterSocket(s string) (network, address string, err error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("%q: want \"unix:/path\", \"inet:host:port\" or \"inet6:host:port\"", s)
	}
	switch strings.ToLower(kind) {
	case "unix", "local":
		if !strings.HasPrefix(rest, "/") {
			return "", "", fmt.Errorf("%q: the unix socket must be an absolute path", s)
		}
		return "unix", filepath.Clean(rest), nil
	case "inet", "inet6":
		network = "tcp"
		if strings.EqualFold(kind, "inet6") {
			network = "tcp6"
		}
		host, port := "", ""
		if p, h, ok := strings.Cut(rest, "@"); ok { // Sendmail: inet:port@host
			host, port = strings.Trim(h, "[]"), p
		} else if h, p, err := net.SplitHostPort(rest); err == nil {
			host, port = h, p
		}
		if host == "" || !validPort(port) {
			return "", "", fmt.Errorf("%q: want inet:host:port (e.g. inet:127.0.0.1:8891)", s)
		}
		return network, net.JoinHostPort(host, port), nil
	}
	return "", "", fmt.Errorf("%q: unknown socket type %q (want unix, inet or inet6)", s, kind)
}

func (c *Config) validateMilters(src []byte) error {
	names := map[string]bool{}
	for i := range c.Milters {
		m := &c.Milters[i]
		bad := func(key, msg string) error {
			return &Error{Source: c.Source, Line: lineOfArray(src, "milter", i, key), Key: fmt.Sprintf("milter[%d].%s", i, key), Msg: msg}
		}
		if _, _, err := parseMilterSocket(m.Socket); err != nil {
			if m.Socket == "" {
				return bad("socket", "every [[milter]] needs a socket")
			}
			return bad("socket", err.Error())
		}
		if m.Name == "" {
			m.Name = m.Socket
		}
		if strings.ContainsAny(m.Name, " \t\r\n\"=") {
			return bad("name", "must be one word")
		}
		if names[m.Name] {
			return bad("name", fmt.Sprintf("%q names two milters", m.Name))
		}
		names[m.Name] = true
		for _, d := range []struct {
			d   *Duration
			key string
			def time.Duration
		}{{&m.ConnectTimeout, "connect_timeout", DefaultMilterConnectTimeout}, {&m.Timeout, "timeout", DefaultMilterTimeout}} {
			switch {
			case d.d.Duration < 0:
				return bad(d.key, "must be a positive duration")
			case d.d.Duration == 0:
				d.d.Duration = d.def
			}
		}
		switch m.DefaultAction {
		case "":
			m.DefaultAction = "tempfail"
		case "tempfail", "accept":
		default:
			return bad("default_action", `must be "tempfail" or "accept"`)
		}
	}
	return nil
}

// Chroot configures the jail smtp-bs enters when it is started as root.
type Chroot struct {
	// Dir is the jail: root's, holding the spool ([spool] dir must lie
	// inside it). Empty: no chroot.
	Dir string `toml:"dir"`
	// Required: without root (or if chroot fails) refuse to serve (exit
	// 77) instead of going on unjailed.
	Required bool `toml:"required"`
}

func (c *Config) validateChroot(bad func(msg string, key ...string) error) error {
	j := &c.Chroot
	if j.Dir == "" {
		if j.Required {
			return bad("needs [chroot] dir", "chroot", "required")
		}
		return nil
	}
	if !strings.HasPrefix(j.Dir, "/") {
		return bad("must be an absolute path", "chroot", "dir")
	}
	j.Dir = filepath.Clean(j.Dir)
	if j.Dir == "/" {
		return bad(`"/" is no jail`, "chroot", "dir")
	}
	if _, ok := c.JailSpool(); !ok {
		return bad(fmt.Sprintf("must lie inside [chroot] dir %q (the spool is what the jail holds)", j.Dir), "spool", "dir")
	}
	return nil
}

// JailSpool is the spool's path as seen inside the jail, and whether the
// spool lies strictly inside [chroot] dir. Without a chroot it is the
// spool's own path.
func (c *Config) JailSpool() (string, bool) {
	spool := filepath.Clean(c.Spool.Dir)
	if c.Chroot.Dir == "" {
		return spool, true
	}
	rel, err := filepath.Rel(filepath.Clean(c.Chroot.Dir), spool)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return "/" + rel, true
}

// lineOfArray finds the line that sets key in the n-th (from 0) [[name]]
// table, or the table's header when key is not there; 0 when not found.
func lineOfArray(src []byte, name string, n int, key string) int {
	header := "[[" + name + "]]"
	seen, header0 := -1, 0
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			if seen == n {
				break
			}
			if h, _, _ := strings.Cut(line, "#"); strings.ReplaceAll(strings.TrimSpace(h), " ", "") == header {
				seen++
				if seen == n {
					header0 = ln
				}
			}
			continue
		}
		if seen != n {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); ok && strings.Trim(strings.TrimSpace(k), `"`) == key {
			return ln
		}
	}
	return header0
}
