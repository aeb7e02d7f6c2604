package main

import (
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/launcher"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/proxy"
)

// unproxy takes the client's address from the PROXY header of a
// connection from a trusted balancer ([proxy] trusted), before anything
// judges or records the peer. It reports false when the process is done
// with the connection: dropped for want of a valid header (logged; never
// served under the balancer's address), or a balancer's health check
// (answered with a 220, not logged). Under [chroot] this runs as root,
// as the tcpwrap check does: the header comes only from a trusted
// balancer, and is read within a bounded size and time.
func unproxy(cfg *config.Config, conn *launcher.Conn, log *maillog.Logger) bool {
	h, err := conn.Unproxy(cfg.Proxy.IsTrusted, cfg.Proxy.HeaderTimeout.Duration)
	switch {
	case err != nil:
		log.Event(maillog.Warning, "reject", "stage", "proxy", "balancer", conn.Peer,
			"reason", "a trusted balancer sent no valid PROXY header", "err", err)
		conn.Close()
		return false
	case h == nil:
		return true
	case h.Health:
		proxy.AnswerHealth(conn, cfg.Hostname, 5*time.Second)
		return false
	}
	// The balancer's TLS is recorded, never believed: nothing grants on it.
	tls := h.TLS
	if tls == "" {
		tls = "none"
	}
	log.Event(maillog.Info, "proxy", "peer", conn.Peer, "balancer", conn.Balancer,
		"version", h.Version, "server", h.Server, "balancer_tls", tls)
	return true
}
