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
		// localuser.Known, at RCPT time.
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

// ForRunner is qrun's Policy from the moment it holds the spool's lock:
// the spool; the local delivery paths (mbox directory, Maildir root,
// file_dir) and what else the caller names (the metrics file's
// directory); reading /etc (aliases and their includes, passwd, the
// resolver's files, the CA roots) and the files the config names;
// executing only in program_dir, plus the interpreter and the dynamic
// loader that its programs name (a "#!/bin/sh" script cannot run
// otherwise), with the system libraries readable for the loader; TCP
// connect to any port (an MX, a route or a smarthost names it), bind
// none.
func ForRunner(cfg *config.Config, spoolDir string, write ...string) Policy {
	lc := &cfg.Local
	p := Policy{
		Profile:  Runner,
		Required: cfg.Sandbox.Required,
		AnyTCP:   true,
		Read: []string{"/etc", "/usr/share/zoneinfo", "/usr/share/ca-certificates",
			lc.Aliases, cfg.Delivery.TLSCAFile, cfg.Delivery.AuthFile},
		Write: append([]string{spoolDir}, write...),
		// exec.Cmd points a program's unused standard streams there.
		WriteFiles: []string{"/dev/null"},
	}
	if len(lc.Domains) > 0 {
		p.Write = append(p.Write, lc.MailSpool, lc.MaildirRoot, lc.FileDir)
	}
	if lc.ProgramDir != "" && len(lc.Domains) > 0 {
		p.Exec = append(p.Exec, lc.ProgramDir)
		p.Exec = append(p.Exec, Interpreters(lc.ProgramDir)...)
		p.Read = append(p.Read, "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")
	}
	return p
}

// ForProgram is the narrower layer a delivery program runs in, on top
// of qrun's: no spool (other people's mail), no mailboxes; it may read
// what qrun reads, execute what qrun may, write only to file_dir, and
// connect where qrun may (a vacation program sends its reply by SMTP).
func ForProgram(cfg *config.Config) Policy {
	r := ForRunner(cfg, "")
	return Policy{
		Profile:    Program,
		Required:   cfg.Sandbox.Required,
		AnyTCP:     true,
		Read:       r.Read,
		Exec:       r.Exec,
		Write:      []string{cfg.Local.FileDir},
		WriteFiles: []string{"/dev/null"},
	}
}

// ForSubmit is the sendmail command's Policy once it has read its
// config, knows who runs it and holds the (unlinked) file a large message
// spills to: TCP connect to submit_to's port only; reading only the
// resolver's files (submit_to may be a name); writing nowhere.
func ForSubmit(submitTo string, required bool) Policy {
	p := Policy{
		Profile:  Submit,
		Required: required,
		Read:     []string{"/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf"},
	}
	if port, ok := tcpPort("tcp", submitTo); ok {
		p.ConnectTCP = []uint16{port}
	}
	return p
}
