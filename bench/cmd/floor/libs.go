//go:build floorlibs

package main

// Built with -tags floorlibs, the floor also links the libraries smtp-bs
// must use (go-smtp and with it crypto/tls, BurntSushi/toml, go-systemd's
// activation, x/sys/unix) without calling them: the difference to the
// plain floor is what linking them costs each process start (package
// init, a larger binary's page faults), which no code of ours can remove.
import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/emersion/go-smtp"
	_ "golang.org/x/sys/unix"
)
