//go:build floorlibs && floorcode

package main

import (
	"os"

	"smtp-bs/pkg/access"
	"smtp-bs/pkg/auth"
	"smtp-bs/pkg/check"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/dnsbl"
	"smtp-bs/pkg/dnsclient"
	"smtp-bs/pkg/launcher"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/milter"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/proxy"
	"smtp-bs/pkg/sandbox"
	"smtp-bs/pkg/session"
	"smtp-bs/pkg/spool"
)

// Built with -tags floorlibs,floorcode, the floor (floor-code) also links
// what cmd/smtp-bs calls in every package it imports, and never calls it:
// floor-code over floor-libs is what a larger program costs each process
// start (its package inits, type tables, page faults), and smtp-bs over
// floor-code is the work smtp-bs does. TestCodeCoversSmtpBs keeps the
// list in step with cmd/smtp-bs's imports.
var code = []any{
	access.Check, access.Daemon, access.Explain, access.Lint, access.Refuse, access.RefuseWith, access.RelayGranted,
	auth.Hash, auth.Load, auth.ReadPassword, auth.ValidUser,
	check.Main,
	config.Load, config.WriteEffective,
	dnsbl.ParseSite, (*dnsbl.Checker).Check,
	dnsclient.New,
	launcher.Take, (*launcher.Conn).Unproxy,
	maillog.Open, maillog.OpenJailed,
	milter.Open,
	privilege.AsUser, privilege.Become, privilege.Chroot, privilege.Lookup,
	proxy.AnswerHealth,
	sandbox.Apply, sandbox.Available, sandbox.ForSession, sandbox.NewNotice,
	session.LoadTLS, (*session.Server).Greet, (*session.Server).Serve,
	spool.Open,
}

// init keeps code reachable for the linker; no argument list ever used
// makes it run.
func init() {
	if len(os.Args) > 1<<20 {
		println(code)
	}
}
