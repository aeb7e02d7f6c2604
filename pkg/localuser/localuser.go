// Package localuser answers the one question intake asks of local
// delivery: does this local part of a [local] domain reach somebody (an
// alias, or a system user)? It is apart from pkg/mailbox so that smtp-bs,
// which runs once per connection and never delivers, does not link the
// delivery engine (SMTP/LMTP client, DANE, MTA-STS over HTTPS) that
// mailbox's local delivery pulls in.
package localuser

import (
	"errors"
	"os/user"
	"strconv"

	"smtp-bs/pkg/address"
	"smtp-bs/pkg/aliases"
	"smtp-bs/pkg/config"
)

// ErrUnknownRecipient means a local recipient has no alias and no account:
// smtp-bs refuses it at RCPT time (5.1.1), so no bounce is ever needed.
var ErrUnknownRecipient = errors.New("user unknown in local recipient table")

// ErrNoUser means the passwd database has no such user.
var ErrNoUser = errors.New("no such user")

// Known checks, at RCPT time, that local part name of a [local] domain
// reaches somebody: an alias, or (for mbox and Maildir) a system user.
// Under LMTP the LMTP server decides. Other errors are temporary.
func Known(cfg *config.Config, name string) error {
	tbl, err := aliases.Load(cfg.Local.Aliases, cfg.Local.Postmaster)
	if err != nil {
		return err
	}
	if tbl.Exists(name) || cfg.Local.Mailbox == "lmtp" {
		return nil
	}
	if !Valid(address.Lower(name)) {
		return ErrUnknownRecipient
	}
	if _, err := Lookup(address.Lower(name)); err != nil {
		if errors.Is(err, ErrNoUser) {
			return ErrUnknownRecipient
		}
		return err
	}
	return nil
}

// Lookup finds a user's uid in the passwd database.
func Lookup(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unk user.UnknownUserError
		if errors.As(err, &unk) {
			return 0, ErrNoUser
		}
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}

// Valid keeps user names from naming paths.
func Valid(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' || name[0] == '-' {
		return false
	}
	for _, r := range name {
		if r == '/' || r == 0 || r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
