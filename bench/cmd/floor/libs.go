//go:build floorlibs

package main

// Built with -tags floorlibs, the floor also links every library smtp-bs
// links (go-smtp and with it crypto/tls, BurntSushi/toml, go-systemd's
// activation, x/sys, x/crypto's argon2 and bcrypt, go-sasl, go-milter,
// x/term, and for [checks] blitiri.com.ar/go/spf, go-msgauth's dkim and
// dmarc, the public suffix list) without calling them: the difference to the plain floor is what
// linking them costs each process start (their package init, a larger
// binary's page faults). It is a lower bound: a blank import links only
// what their init reaches, not the code smtp-bs calls.
import (
	_ "blitiri.com.ar/go/spf"
	_ "github.com/BurntSushi/toml"
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/emersion/go-milter"
	_ "github.com/emersion/go-msgauth/dkim"
	_ "github.com/emersion/go-msgauth/dmarc"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"

	_ "smtp-bs/third_party/publicsuffix"
)
