package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"smtp-bs/pkg/sandbox"
	"smtp-bs/pkg/submit"
	"smtp-bs/pkg/sysexits"
)

// confine puts the sendmail command in its sandbox (pkg/sandbox) once
// it has its settings; it looks up the invoking user first, as the
// passwd database is out of reach afterwards. An error means not to
// submit ([sandbox] required and the kernel cannot, or applying failed).
func confine(env *submit.Env, verbose bool) error {
	if !env.Sandbox.Enabled {
		return nil
	}
	login, name, uerr := submit.CurrentUser()
	env.User = func() (string, string, error) { return login, name, uerr }
	time.Now().Zone() // time.Local reads /etc/localtime on first use (the Date field)
	// The file a large message spills to, made now (and unlinked) while
	// a directory is writable: the sandbox leaves none. Most messages
	// stay in memory and need no file, so a temporary directory we may
	// not write fails only a message that must spill (exit 75), and
	// never makes the spill try a directory inside the sandbox.
	spill, err := os.CreateTemp(env.TempDir, "sendmail-")
	if err != nil {
		cerr := err // err is reused below
		env.TempFile = func() (*os.File, error) {
			return nil, fmt.Errorf("none could be made before the sandbox was applied: %w", cerr)
		}
	} else {
		os.Remove(spill.Name())
		env.TempFile = func() (*os.File, error) { return spill, nil }
	}
	l, err := sandbox.Apply(sandbox.ForSubmit(env.SubmitTo, env.Sandbox.Required))
	if err != nil {
		return &submit.Error{Code: sysexits.NoPerm, Msg: err.Error()}
	}
	// Only under -v: a cron job's every mail would otherwise carry it.
	if verbose {
		fmt.Fprintf(os.Stderr, "sendmail: sandbox: %s%s\n", l, missing(l))
	}
	return nil
}

func missing(l sandbox.Level) string {
	if len(l.Missing) == 0 {
		return ""
	}
	return "; not enforced: " + strings.Join(l.Missing, "; ")
}
