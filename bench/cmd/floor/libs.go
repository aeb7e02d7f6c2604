//go:build floorlibs

package main

// Built with -tags floorlibs, the floor also links every library that
// smtp-bs's own packages import (go list -deps ./cmd/smtp-bs; libs_test.go
// fails when this list drifts from it) without calling them: the
// difference to the plain floor is what linking them costs each process
// start (their package init, a larger binary's page faults). It is a lower
// bound: a blank import links only what their init reaches, not the code
// smtp-bs calls. Take a library off cmd/smtp-bs and it goes from here too.
import (
	_ "blitiri.com.ar/go/spf"
	_ "github.com/BurntSushi/toml"
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/emersion/go-milter"
	_ "github.com/emersion/go-msgauth/dkim"
	_ "github.com/emersion/go-msgauth/dmarc"
	_ "github.com/emersion/go-sasl"
	_ "github.com/emersion/go-smtp"
	_ "github.com/landlock-lsm/go-landlock/landlock"
	_ "github.com/landlock-lsm/go-landlock/landlock/syscall"
	_ "github.com/pires/go-proxyproto"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/crypto/bcrypt"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"

	_ "smtp-bs/third_party/publicsuffix"
)
