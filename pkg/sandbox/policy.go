package sandbox

import (
	"net"
	"path/filepath"
	"strconv"

	"smtp-bs/pkg/config"
)

// ForSession is smtp-bs's Policy from the moment it holds its connection,
// its log, the TLS pair and credentials, and its milter connections, until
// it exits: what a session still does is write messages into the spool
// (tmp/, then a link into queue/ or hold/) and, for [local] domains, check
// recipients against the aliases file and the passwd database. Milters
// are connected before, but their TCP ports stay open to connect to, in
// case a milter is reconnected; no other port is.
func ForSession(cfg *config.Config, spoolDir string) Policy {
	p := Policy{
		Profile:  Session,
		Required: cfg.Sandbox.Required,
		Write: []string{
			filepath.Join(spoolDir, "tmp"),
			filepath.Join(spoolDir, "queue"),
			filepath.Join(spoolDir, "hold"),
		},
	}
	if len(cfg.Local.Domains) > 0 {
		// mailbox.Known, at RCPT time.
		p.Read = append(p.Read, cfg.Local.Aliases)
		if cfg.Local.Mailbox != "lmtp" {
			p.Read = append(p.Read, "/etc/passwd")
		}
	}
	for i := range cfg.Milters {
		if port, ok := tcpPort(cfg.Milters[i].Network()); ok {
			p.ConnectTCP = append(p.ConnectTCP, port)
		}
	}
	return p
}

// tcpPort is the port of a "tcp" address.
func tcpPort(network, addr string) (uint16, bool) {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return 0, false
	}
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(ps, 10, 16)
	return uint16(n), err == nil
}
