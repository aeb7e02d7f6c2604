// Command smtp-bs serves exactly one SMTP session on the connection it is
// handed (fd 3 under systemd Accept=yes, fds 0/1 under xinetd, inetd or
// tcpserver, or a pipe for local submission), spools what it accepts, and
// exits. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"smtp-bs/pkg/access"
	"smtp-bs/pkg/auth"
	"smtp-bs/pkg/check"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/dnsclient"
	"smtp-bs/pkg/launcher"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/session"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	syscall.Umask(0o077)
	fs := flag.NewFlagSet("smtp-bs", flag.ContinueOnError)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	wrapTest := fs.Bool("tcpwrap-test", false, "with ADDR [NAME]: would hosts.allow/hosts.deny admit this client, and which line decides? (like tcpdmatch)")
	tlsWrapper := fs.Bool("tls-wrapper", false, "implicit TLS from the first byte (port 465), as [tls] implicit = true")
	hashPassword := fs.Bool("hash-password", false, "with [USER]: read a password (from the terminal without echo, else one line of standard input) and print a credentials_file line")
	hashScheme := fs.String("hash-scheme", auth.Argon2id, "hash for -hash-password: argon2id or bcrypt")
	doCheck := fs.Bool("check", false, "audit the installation (owners, modes, run user), print what is wrong and how to fix it, exit 0, 77 or 78")
	wrapLint := fs.Bool("tcpwrap-lint", false, "report the malformed rules of hosts.allow/hosts.deny, with file and line (like tcpdchk)")
	var showConfig config.ShowFlag
	fs.Var(&showConfig, "show-config", "print the configuration after defaults as TOML; =changed: only what differs from the defaults")
	fs.Usage = func() {}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(os.Stdout, fs)
			return sysexits.OK
		}
		brief(os.Stderr)
		return sysexits.Usage
	}
	if *showVersion {
		fmt.Println("smtp-bs", version)
		return sysexits.OK
	}
	if *wrapTest {
		return tcpwrapTest(*cfgPath, fs.Args())
	}
	if *hashPassword {
		return hashMain(*hashScheme, fs.Args())
	}
	if *wrapLint {
		return tcpwrapLint(*cfgPath, fs.Args())
	}
	if showConfig != "" {
		return showConfigMain(*cfgPath, showConfig == "changed", fs.Args())
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "smtp-bs: unexpected arguments:", fs.Args())
		return sysexits.Usage
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if *doCheck { // before anything drops privileges: works as root and as run_as
		return check.Main(os.Stdout, "smtp-bs", *cfgPath, explicit, nil)
	}

	cfg, err := config.Load(*cfgPath, explicit)
	if err != nil {
		early("config", err)
		return sysexits.Config
	}
	// Started as root: the run user is resolved now, while /etc/passwd is
	// in reach. Without a chroot root is dropped at once, as ever; with one
	// it is kept until the jail is entered (chroot.go).
	var id *privilege.Identity
	jail := cfg.Chroot.Dir != "" && privilege.IsRoot()
	if privilege.IsRoot() {
		if id, err = privilege.Lookup(cfg.RunAs); err == nil && id.UID == 0 {
			err = privilege.ErrRoot
		}
		if err == nil && !jail {
			err = privilege.Become(id)
		}
		if err != nil {
			early("privilege", err)
			return sysexits.NoPerm
		}
	}
	log, err := openLog(cfg, id, jail)
	if err != nil {
		early("log", err)
		return sysexits.Config
	}
	conn, err := launcher.Take()
	if err != nil {
		log.Event(maillog.Error, "error", "stage", "connection", "err", err)
		return sysexits.Software
	}
	// The hard alarm: nothing, not even a stuck disk, keeps this process
	// past the session cap.
	time.AfterFunc(cfg.SMTP.SessionTimeout.Duration+30*time.Second, func() {
		log.Event(maillog.Error, "error", "stage", "alarm", "err", "session cap exceeded, exiting")
		os.Exit(sysexits.TempFail)
	})
	if !unproxy(cfg, conn, log) {
		return sysexits.OK
	}
	if cfg.Chroot.Dir != "" && !jail && !chrootUnavailable(cfg, log) {
		refuseConfig(conn, cfg.Hostname)
		return sysexits.NoPerm
	}
	client := session.Client{Addr: conn.Peer, Local: conn.Local}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		client.Port = uint16(a.Port)
	}
	if cfg.TCPWrap.Enabled && !conn.Local {
		daemon := access.Daemon(cfg, progName())
		v, err := access.Check(context.Background(), cfg, daemon, conn.RemoteAddr(), conn.LocalAddr(), nil)
		for _, p := range v.Malformed { // libwrap syslogs these too
			log.Event(maillog.Warning, "tcpwrap", "problem", p.String())
		}
		if err != nil || !v.Allow {
			log.Event(maillog.Warning, "reject", "stage", "tcpwrap", "peer", client, "daemon", daemon,
				"rule", fmt.Sprintf("%s:%d", v.File, v.Line), "reason", v.Reason)
			// Refuse reads the client's commands: not as root.
			if jail {
				if _, err := enterJail(cfg, id, log); err != nil {
					conn.Close()
					return sysexits.NoPerm
				}
			}
			access.Refuse(conn, cfg.Hostname, 10*time.Second)
			return sysexits.OK
		}
		client.Relay = access.RelayGranted(v)
	}
	if text, listed := dnsblListed(cfg, client, log, *tlsWrapper || cfg.TLS.Implicit); listed {
		if jail { // Refuse reads the client's commands: not as root.
			if _, err := enterJail(cfg, id, log); err != nil {
				conn.Close()
				return sysexits.NoPerm
			}
		}
		access.RefuseWith(conn, cfg.Hostname, text, 10*time.Second)
		return sysexits.OK
	}
	srv := &session.Server{Config: cfg, Log: log, Implicit: *tlsWrapper || cfg.TLS.Implicit}
	if cfg.Checks.SPFOn() {
		srv.Checks = &session.Checks{Resolver: dnsclient.New(cfg.Checks.Resolver)}
	}
	if code := loadSecrets(cfg, srv, log); code != sysexits.OK {
		refuseConfig(conn, cfg.Hostname)
		return code
	}
	// The client is to be served, and the TLS pair and credentials look
	// right (a broken one still gets a 421 greeting): greet it now, and
	// connect the milters, open the spool and enter the sandbox while it
	// answers. Not while still root, before a chroot. Nothing the client
	// sends is read before the sandbox is in place.
	if sandboxMissing(cfg, log) {
		refuseConfig(conn, cfg.Hostname)
		return sysexits.NoPerm
	}
	if !jail && !srv.Greet(conn, client) {
		return sysexits.OK
	}
	if len(cfg.Milters) > 0 {
		if srv.Milters, err = openMilters(cfg, id, jail, client, log); err != nil {
			log.Event(maillog.Error, "error", "stage", "privilege", "err", err)
			conn.Close()
			return sysexits.NoPerm
		}
		defer srv.Milters.Close()
	}
	spoolDir := cfg.Spool.Dir
	if jail {
		inside, err := enterJail(cfg, id, log)
		if err != nil {
			refuseConfig(conn, cfg.Hostname)
			return sysexits.NoPerm
		}
		if inside {
			spoolDir, _ = cfg.JailSpool()
		}
	}
	sp, err := spool.Open(spoolDir, spool.Ops{})
	if err != nil {
		log.Event(maillog.Error, "error", "stage", "spool", "err", err)
		// After the early greeting: the client's EHLO may wait unread.
		session.Refuse(conn, fmt.Sprintf("421 4.3.0 %s Service temporarily unavailable", cfg.Hostname))
		return sysexits.TempFail
	}
	srv.Spool = sp
	if !confine(cfg, spoolDir, log) {
		session.Refuse(conn, configProblem(cfg.Hostname))
		return sysexits.NoPerm
	}
	// No SIGTERM handler: a stop ends the process as a crash would, which
	// the spool is built for (nothing half-written is ever queued), and
	// os/signal would cost every connection a thread and a goroutine.
	if err := srv.Serve(context.Background(), conn, client); err != nil {
		log.Event(maillog.Error, "error", "stage", "session", "err", err)
		return sysexits.TempFail
	}
	return sysexits.OK
}

func progName() string { return filepath.Base(os.Args[0]) }

// configProblem is the 421 for a configuration the session cannot run
// with.
func configProblem(hostname string) string {
	return fmt.Sprintf("421 4.3.0 %s Service not available (local configuration problem), try again later", hostname)
}

// refuseConfig answers configProblem in place of the greeting and ends
// the connection. The client has sent nothing yet, and the process may
// still be root (a failed chroot): nothing is read.
func refuseConfig(conn net.Conn, hostname string) {
	fmt.Fprintf(conn, "%s\r\n", configProblem(hostname))
	conn.Close()
}

// loadSecrets reads the TLS pair and the credentials file into srv, at the
// start of every connection: a renewed certificate or an edited file is
// used from the next connection on. A failure is logged and is a
// configuration error, except a TLS pair that [tls] optional lets us do
// without.
func loadSecrets(cfg *config.Config, srv *session.Server, log *maillog.Logger) int {
	if srv.Implicit && !cfg.TLS.HasTLS() {
		log.Event(maillog.Error, "error", "stage", "tls", "err", "-tls-wrapper needs [tls] cert_file and key_file")
		return sysexits.Config
	}
	tc, err := session.LoadTLS(&cfg.TLS, func(err error) {
		log.Event(maillog.Error, "error", "stage", "tls", "err", err)
	})
	if err != nil {
		log.Event(maillog.Error, "error", "stage", "tls", "err", err)
		if !cfg.TLS.Optional || srv.Implicit {
			return sysexits.Config
		}
		log.Event(maillog.Warning, "tls", "result", "disabled", "reason", "[tls] optional = true: serving without STARTTLS")
	}
	srv.TLS = tc
	if f := cfg.Auth.CredentialsFile; f != "" {
		creds, err := auth.Load(f, auth.Limits{MemoryKiB: uint32(cfg.Auth.MaxHashMemoryKiB), Passes: uint32(cfg.Auth.MaxHashPasses), BcryptCost: cfg.Auth.MaxBcryptCost})
		if err != nil {
			log.Event(maillog.Error, "error", "stage", "auth", "err", err)
			return sysexits.Config
		}
		srv.Credentials = creds
	}
	return sysexits.OK
}

// hashMain is smtp-bs -hash-password [USER].
func hashMain(scheme string, args []string) int {
	if len(args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: smtp-bs -hash-password [-hash-scheme argon2id|bcrypt] [USER]")
		return sysexits.Usage
	}
	prefix := ""
	if len(args) == 1 {
		if err := auth.ValidUser(args[0]); err != nil {
			fmt.Fprintln(os.Stderr, "smtp-bs:", err)
			return sysexits.Usage
		}
		prefix = args[0] + ":"
	}
	pw, err := auth.ReadPassword(os.Stdin, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.DataErr
	}
	h, err := auth.Hash(scheme, pw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.Usage
	}
	fmt.Println(prefix + h)
	return sysexits.OK
}

// early reports an error that comes before the log is open: on stderr
// unless that is the client's socket, and through the default log target.
// A network client is told to come back later rather than cut off.
func early(stage string, err error) {
	if maillog.StderrSafe() {
		fmt.Fprintf(os.Stderr, "smtp-bs: %v\n", err)
	}
	if l, lerr := maillog.Open("auto", progName()); lerr == nil && !maillog.StderrInteractive() {
		l.Event(maillog.Error, "error", "stage", stage, "err", err)
	}
	if c, cerr := launcher.Take(); cerr == nil && !c.Local {
		fmt.Fprintf(c, "421 4.3.0 Service not available (local configuration problem), try again later\r\n")
		c.Close()
	}
}

// tcpwrapTest is -tcpwrap-test ADDR [NAME]: exit 0 if the client would be
// admitted, 77 if not.
func tcpwrapTest(cfgPath string, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: smtp-bs [-config FILE] -tcpwrap-test ADDR [NAME]")
		return sysexits.Usage
	}
	cfg, err := config.Load(cfgPath, cfgPath != config.DefaultPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.Config
	}
	name := ""
	if len(args) == 2 {
		name = args[1]
	}
	ok, err := access.Explain(os.Stdout, cfg, access.Daemon(cfg, progName()), args[0], name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "smtp-bs:", err)
		return sysexits.Usage
	}
	if !ok {
		return sysexits.NoPerm
	}
	return sysexits.OK
}
