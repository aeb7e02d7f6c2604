package main

import (
	"path/filepath"
	"strings"
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/sandbox"
)

// confine puts the session in its sandbox (pkg/sandbox) once it holds
// everything it opens outside the spool: the connection, the log, the TLS
// pair and credentials, the milters. false: [sandbox] required and the
// kernel cannot, or applying failed; the session must not be served.
func confine(cfg *config.Config, spoolDir string, log *maillog.Logger) bool {
	if !cfg.Sandbox.Enabled {
		return true
	}
	// time.Local reads /etc/localtime on first use (the Received field,
	// the log): load it while it is in reach.
	time.Now().Zone()
	// What this kernel cannot enforce is logged once, not per connection.
	notice := sandbox.NewNotice(filepath.Join(spoolDir, "sandbox-level"), sandbox.Available())
	l, err := sandbox.Apply(sandbox.ForSession(cfg, spoolDir))
	if err != nil {
		log.Event(maillog.Error, "sandbox", "result", "refused", "level", l, "err", err)
		return false
	}
	if notice {
		log.Event(maillog.Warning, "sandbox", "level", l, "not_enforced", strings.Join(l.Missing, "; "))
	}
	return true
}

// sandboxMissing reports, before the greeting, a sandbox that [sandbox]
// required demands and this kernel cannot give: the client then gets a
// 421 greeting rather than a 220 and a 421 at its first command. confine
// applies the sandbox itself after the greeting.
func sandboxMissing(cfg *config.Config, log *maillog.Logger) bool {
	if !cfg.Sandbox.Enabled || !cfg.Sandbox.Required {
		return false
	}
	if l, err := sandbox.Demand(true); err != nil {
		log.Event(maillog.Error, "sandbox", "result", "refused", "level", l, "err", err)
		return true
	}
	return false
}
