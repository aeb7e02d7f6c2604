package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"smtp-bs/pkg/access"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/sysexits"
)

// helpText is what smtp-bs -h prints (on stdout, exit 0).
const helpText = `smtp-bs serves exactly one SMTP session on the connection it is handed, then
exits. It never listens on a port: a launcher accepts the connection and starts
one smtp-bs per client. The connection is fd 3 under systemd Accept=yes (when
LISTEN_PID is this process), else stdin/stdout (xinetd, inetd, tcpserver, or a
pipe from a local program, which is then a local submission). Started as root it
becomes run_as before reading input.

usage: smtp-bs [-config FILE] [-tls-wrapper]            serve one session (the normal mode)
       smtp-bs [-config FILE] -check                    audit the installation, with the fix for each problem
       smtp-bs [-config FILE] -tcpwrap-test ADDR [NAME] would hosts.allow/hosts.deny admit ADDR? (tcpdmatch)
       smtp-bs [-config FILE] -tcpwrap-lint             malformed lines of hosts.allow/hosts.deny (tcpdchk)
       smtp-bs [-config FILE] -show-config[=changed]    the configuration after defaults, as TOML
                                                        (every key, or those that differ; postconf -d / -n)
       smtp-bs -hash-password [-hash-scheme argon2id|bcrypt] [USER]
                                                        print a credentials_file line
       smtp-bs -version | -h

options:
`

// exitText lists the exit codes of every mode.
const exitText = `
exit codes (sysexits):
  0   the session was served (or refused by hosts.deny, in SMTP); -check found nothing;
      -tcpwrap-test: admitted; -tcpwrap-lint: no malformed line
  64  bad flags or arguments
  65  -hash-password could not read a password; -tcpwrap-lint found malformed lines
  70  no connection to serve (nothing on fd 3 or stdin)
  74  -tcpwrap-lint could not read a rule file
  75  temporary failure (the spool could not be opened, the session broke); nothing was lost
  77  permission: could not become run_as or chroot; -check found a problem; -tcpwrap-test: refused
  78  configuration error (the file, the TLS pair, the credentials)
See smtp-bs(8), smtp-bs.toml(5) and README.md.
`

// help writes the whole -h text: synopsis, modes, every flag, exit codes.
func help(w io.Writer, fs *flag.FlagSet) {
	io.WriteString(w, helpText)
	fs.SetOutput(w)
	fs.PrintDefaults()
	io.WriteString(w, exitText)
}

// brief is what a bad flag gets, on stderr after flag's own message.
func brief(w io.Writer) {
	fmt.Fprintln(w, "usage: smtp-bs [-config FILE] [-check | -tcpwrap-test ADDR [NAME] | -show-config[=changed] | -hash-password [USER] | -version]; smtp-bs -h says more")
}

// showConfigMain is -show-config[=changed]: the configuration after
// defaults, as TOML that loads back to the same result.
func showConfigMain(cfgPath string, changed bool, args []string) int {
	if len(args) > 0 {
		brief(os.Stderr)
		return sysexits.Usage
	}
	cfg, err := config.Load(cfgPath, cfgPath != config.DefaultPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.Config
	}
	if err := config.WriteEffective(os.Stdout, cfg, changed); err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.IOErr
	}
	return sysexits.OK
}

// tcpwrapLint is -tcpwrap-lint: the malformed rules of the access files;
// exit 0 when there are none, 65 when there are.
func tcpwrapLint(cfgPath string, args []string) int {
	if len(args) > 0 {
		brief(os.Stderr)
		return sysexits.Usage
	}
	cfg, err := config.Load(cfgPath, cfgPath != config.DefaultPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.Config
	}
	n, err := access.Lint(os.Stdout, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.IOErr
	}
	if n > 0 {
		return sysexits.DataErr
	}
	fmt.Printf("%s, %s: no malformed rule\n", cfg.TCPWrap.AllowFile, cfg.TCPWrap.DenyFile)
	return sysexits.OK
}
