package main

import (
	"net/netip"
	"time"

	"smtp-bs/pkg/access"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/milter"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/session"
)

// The chroot, when smtp-bs is started as root with [chroot] dir set. Root
// is kept only for the steps that need something outside the jail; the
// order in run():
//
//  1. the config, and the run user resolved (/etc/passwd);
//  2. the log, opened as the run user and by descriptor (openLog);
//  3. the connection, hosts.allow and hosts.deny (and the DNS they need);
//  4. the TLS pair and the credentials file;
//  5. the milters, connected as the run user (openMilters);
//  6. time.Local loaded, chroot, chdir /, then root dropped for good
//     (enterJail);
//  7. the spool, at its path inside the jail.
//
// After step 6 nothing reads a file outside the spool, except the
// recipient checks of [local] domains (aliases, passwd): a jail that serves
// local domains needs copies of those (contrib/chroot/mkjail.sh).

// openLog opens the log. In a jail-to-be it is opened as the run user (a
// log file it creates is the run user's, and a symlink the run user
// planted cannot make root write elsewhere) and held by descriptor, since
// no path outside resolves once inside.
func openLog(cfg *config.Config, id *privilege.Identity, jail bool) (*maillog.Logger, error) {
	if !jail {
		return maillog.Open(cfg.Log, progName())
	}
	var l *maillog.Logger
	var note string
	err := privilege.AsUser(id, func() (err error) {
		l, note, err = maillog.OpenJailed(cfg.Log, progName())
		return err
	})
	if err != nil {
		return nil, err
	}
	if note != "" {
		l.Event(maillog.Warning, "chroot", "log", note)
	}
	return l, nil
}

// chrootUnavailable is for [chroot] dir without root: it says so, and
// whether to go on ([chroot] required = false).
func chrootUnavailable(cfg *config.Config, log *maillog.Logger) bool {
	const why = "not started as root: chroot needs root (start smtp-bs as root from the launcher, or use systemd's RootDirectory=)"
	if cfg.Chroot.Required {
		log.Event(maillog.Error, "chroot", "result", "unavailable", "dir", cfg.Chroot.Dir, "reason", why,
			"action", "refusing to serve ([chroot] required = true)")
		return false
	}
	log.Event(maillog.Warning, "chroot", "result", "unavailable", "dir", cfg.Chroot.Dir, "reason", why,
		"action", "serving without a chroot ([chroot] required = false)")
	return true
}

// openMilters connects to the milters and tells them of the connection.
// In a jail-to-be this happens as the run user (the socket permissions
// -check audits are the run user's) and before the chroot, so that
// neither the milters' unix sockets nor their names need to be reachable
// from inside the jail.
func openMilters(cfg *config.Config, id *privilege.Identity, jail bool, client session.Client, log *maillog.Logger) (*milter.Session, error) {
	peer := milter.Peer{Addr: client.Addr, Port: client.Port, Hostname: cfg.Hostname, Daemon: access.Daemon(cfg, progName())}
	if client.Local {
		peer.Addr = netip.Addr{}
	}
	var ms *milter.Session
	open := func() error {
		ms = milter.Open(cfg.Milters, peer, log)
		return nil
	}
	if !jail {
		open()
		return ms, nil
	}
	return ms, privilege.AsUser(id, open)
}

// enterJail loads what Go would otherwise load lazily from outside, enters
// the jail and drops root for good. inside is false when the chroot failed
// and [chroot] required = false let us go on without it; err means the
// session must not run (exit 77).
func enterJail(cfg *config.Config, id *privilege.Identity, log *maillog.Logger) (inside bool, err error) {
	// time.Local reads /etc/localtime (or $TZ) on first use: the Received
	// header and the log need it, and it is out of reach once inside.
	time.Now().Zone()
	if err := privilege.Chroot(cfg.Chroot.Dir); err != nil {
		if cfg.Chroot.Required {
			log.Event(maillog.Error, "chroot", "result", "failed", "dir", cfg.Chroot.Dir, "err", err,
				"action", "refusing to serve ([chroot] required = true)")
			return false, err
		}
		log.Event(maillog.Warning, "chroot", "result", "failed", "dir", cfg.Chroot.Dir, "err", err,
			"action", "serving without a chroot ([chroot] required = false)")
	} else {
		inside = true
	}
	if err := privilege.Become(id); err != nil {
		log.Event(maillog.Error, "error", "stage", "privilege", "err", err)
		return false, err
	}
	return inside, nil
}
