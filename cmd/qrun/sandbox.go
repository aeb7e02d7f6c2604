package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smtp-bs/pkg/aliases"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/mailbox"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/sandbox"
	"smtp-bs/pkg/sysexits"
)

// confine puts the runner in its sandbox (pkg/sandbox) once it holds the
// spool's lock. metrics is the -metrics file, whose directory stays
// writable. Not OK: [sandbox] required and the kernel cannot, or
// applying failed; qrun must not deliver.
func confine(cfg *config.Config, spoolDir, metrics string, log *maillog.Logger) int {
	if !cfg.Sandbox.Enabled {
		return sysexits.OK
	}
	// time.Local reads /etc/localtime on first use: load it now.
	time.Now().Zone()
	var write []string
	if metrics != "" {
		write = append(write, filepath.Dir(metrics))
	}
	p := sandbox.ForRunner(cfg, spoolDir, write...)
	if len(cfg.Local.Domains) > 0 {
		// The :include: files the aliases name, wherever they are. A
		// qrun in its loop keeps this list: a new include outside /etc
		// needs a restart.
		if tbl, err := aliases.Load(cfg.Local.Aliases, cfg.Local.Postmaster); err == nil {
			p.Read = append(p.Read, tbl.Includes()...)
		}
	}
	if exe, err := os.Executable(); err == nil && cfg.Local.ProgramDir != "" {
		p.Exec = append(p.Exec, exe) // programWrap re-executes it
	}
	notice := sandbox.NewNotice(filepath.Join(spoolDir, "sandbox-level"), sandbox.Available())
	l, err := sandbox.Apply(p)
	if err != nil {
		log.Event(maillog.Error, "sandbox", "result", "refused", "level", l, "err", err)
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.NoPerm
	}
	if notice {
		log.Event(maillog.Warning, "sandbox", "level", l, "not_enforced", strings.Join(l.Missing, "; "))
	}
	return sysexits.OK
}

// programWrap runs |program deliveries in their narrower layer
// (sandbox.ForProgram), through this binary re-executed; nil without the
// sandbox.
func programWrap(cfg *config.Config) mailbox.Wrapper {
	exe, err := os.Executable()
	if !cfg.Sandbox.Enabled || err != nil {
		return nil
	}
	return sandbox.ProgramWrapper(exe, sandbox.ForProgram(cfg))
}
