// Command qrun is the queue runner: one pass with -once (from cron or a
// systemd timer), or passes every -interval until SIGTERM. Only one qrun
// delivers from a spool at a time; a second one says so and exits 0. The
// queue tools (-list, -flush, -hold, -release, -delete, -bounce, -route)
// work while another qrun runs. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"smtp-bs/pkg/check"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/inspect"
	"smtp-bs/pkg/mailbox"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/runner"
	"smtp-bs/pkg/sandbox"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
	"smtp-bs/pkg/tlspolicy"
)

var version = "dev"

const usage = `usage: qrun [-config FILE] -once | -interval D      deliver (one pass, or a loop)
       qrun [-config FILE] -list [-json]              show the queue
       qrun [-config FILE] -flush [ID...]             make messages due now (all without IDs)
       qrun [-config FILE] -show ID [-body]           one message: envelope, recipients, header (postcat -q)
       qrun [-config FILE] -shape                     the queue by recipient domain and age (qshape)
       qrun [-config FILE] -hold ID...|ALL | -release ID...|ALL | -delete ID...|ALL | -bounce ID...
       qrun [-config FILE] -route ADDRESS             what would happen to a recipient
       qrun [-config FILE] -tls-forget DOMAIN         forget the TLS level remembered for a domain
       qrun [-config FILE] -init                      create the spool
       qrun [-config FILE] -check                     audit owners and modes of the installation
options: -metrics FILE (Prometheus textfile after each pass), -version`

func main() { os.Exit(run()) }

func run() int {
	if code, ok := sandbox.ProgramMain(); ok { // qrun re-executed to run a delivery program
		return code
	}
	syscall.Umask(0o077)
	fs := flag.NewFlagSet("qrun", flag.ContinueOnError)
	fs.Usage = func() {}
	cfgPath := fs.String("config", config.DefaultPath, "configuration file")
	once := fs.Bool("once", false, "make one pass over what is due, then exit")
	interval := fs.Duration("interval", 0, "time between passes (default: [delivery] interval)")
	list := fs.Bool("list", false, "print the queue")
	asJSON := fs.Bool("json", false, "with -list: print JSON")
	show := fs.String("show", "", "print one message: envelope, each recipient's state and last reply, header (like postcat -q)")
	body := fs.Bool("body", false, "with -show: print the body too")
	shape := fs.Bool("shape", false, "the queue by recipient domain and age (like qshape)")
	flush := fs.Bool("flush", false, "make the given messages (or all) due now")
	hold := fs.Bool("hold", false, "put messages on hold")
	release := fs.Bool("release", false, "release held messages")
	del := fs.Bool("delete", false, "delete messages")
	bounce := fs.Bool("bounce", false, "bounce messages now")
	route := fs.String("route", "", "show how a recipient address would be delivered")
	tlsForget := fs.String("tls-forget", "", "forget the TLS level remembered for a domain")
	metrics := fs.String("metrics", "", "write a Prometheus textfile after each pass")
	initSpool := fs.Bool("init", false, "create the spool directory tree and exit")
	doCheck := fs.Bool("check", false, "audit the installation (owners, modes, run user), print what is wrong and how to fix it, exit 0, 77 or 78")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(os.Stdout, fs)
			return sysexits.OK
		}
		fmt.Fprintln(os.Stderr, usage)
		return sysexits.Usage
	}
	if *showVersion {
		fmt.Println("qrun", version)
		return sysexits.OK
	}
	tools := 0
	for _, b := range []bool{*list, *flush, *hold, *release, *del, *bounce, *route != "", *initSpool, *once, *show != "", *shape, *tlsForget != ""} {
		if b {
			tools++
		}
	}
	needIDs := *hold || *release || *del || *bounce
	if tools > 1 || *asJSON && !*list || *body && *show == "" || needIDs && fs.NArg() == 0 || fs.NArg() > 0 && !needIDs && !*flush {
		fmt.Fprintln(os.Stderr, usage)
		return sysexits.Usage
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if *doCheck { // before anything drops privileges: works as root and as run_as
		return check.Main(os.Stdout, "qrun", *cfgPath, explicit, tlspolicy.ProbeResolver)
	}
	cfg, err := config.Load(*cfgPath, explicit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.Config
	}
	if *initSpool {
		if err := createSpool(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", err)
			return sysexits.CantCreat
		}
		fmt.Println("qrun: spool ready at", cfg.Spool.Dir)
		return sysexits.OK
	}
	if _, err := privilege.Drop(cfg.RunAs); err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.NoPerm
	}
	if *route != "" {
		tr, err := delivery.FromConfig(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", err)
			return sysexits.Config
		}
		return explain(cfg, tr, *route)
	}
	if *tlsForget != "" {
		return forgetTLS(cfg, *tlsForget)
	}
	sp, err := spool.Open(cfg.Spool.Dir, spool.Ops{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", inspect.SpoolError(cfg.Spool.Dir, err))
		return sysexits.IOErr
	}
	switch {
	case *show != "":
		if err := inspect.Show(os.Stdout, sp, *show, *body, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", err)
			return inspect.ExitCode(err)
		}
		return sysexits.OK
	case *list, *shape:
		items, err := runner.List(sp)
		if err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", inspect.SpoolError(cfg.Spool.Dir, err))
			return sysexits.IOErr
		}
		if *shape {
			inspect.Shape(os.Stdout, items, time.Now())
			return sysexits.OK
		}
		if *asJSON {
			runner.WriteJSON(os.Stdout, items)
		} else {
			runner.WriteText(os.Stdout, items, time.Now())
		}
		return sysexits.OK
	case *hold, *release, *del, *bounce:
		ids := fs.Args()
		if !*bounce { // ALL: every message (-bounce ALL is too easy a mistake)
			if ids, err = inspect.Expand(sp, ids, func(e spool.Entry) bool { return *del || e.Held == *release }); err != nil {
				fmt.Fprintln(os.Stderr, "qrun:", err)
				return sysexits.IOErr
			}
		}
		return inspect.Each(os.Stdout, os.Stderr, ids, func(id string) (string, error) {
			switch {
			case *hold:
				return "held", sp.Hold(id)
			case *release:
				if err := sp.Release(id); err != nil {
					return "", err
				}
				return "released", sp.SetNextTry(id, time.Now())
			case *del:
				return "deleted", sp.Remove(id)
			}
			return "bounced by the next pass", runner.Bounce(sp, id, "bounced by the administrator")
		})
	case *flush:
		n, err := runner.Flush(sp, fs.Args())
		if err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", err)
			return sysexits.TempFail
		}
		fmt.Printf("qrun: %s due now\n", inspect.Plural(n, "message"))
		if pid := lockHolder(sp); pid > 0 {
			// A running qrun wakes for a pass at once.
			syscall.Kill(pid, syscall.SIGUSR1)
			fmt.Printf("qrun: woke the running qrun (pid %d)\n", pid)
			return sysexits.OK
		}
		*once = true
	}
	return deliver(cfg, sp, *once, *interval, *metrics)
}

func explain(cfg *config.Config, tr *delivery.Transport, addr string) int {
	addr = strings.Trim(addr, "<>")
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		fmt.Printf("<%s>: refused: not an address of the form user@domain\n", addr)
		return sysexits.DataErr
	}
	if cfg.Local.IsLocalDelivery(addr[at+1:]) {
		account := mailbox.Explain(cfg, addr)
		fmt.Print(account)
		return inspect.RouteExit(account)
	}
	if cfg.SMTP.IsLocalDomain(addr[at+1:]) {
		fmt.Printf("<%s>: %s is a local domain: accepted from anyone, then:\n", addr, addr[at+1:])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	account := tr.Explain(ctx, addr)
	fmt.Print(account)
	return inspect.RouteExit(account)
}

// lockHolder is the pid of the qrun holding the spool lock, or 0.
func lockHolder(sp *spool.Spool) int {
	lock, err := sp.TryLock()
	if err == nil {
		lock.Unlock()
		return 0
	}
	b, _ := os.ReadFile(sp.LockPath())
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func deliver(cfg *config.Config, sp *spool.Spool, once bool, interval time.Duration, metrics string) (code int) {
	log, err := maillog.Open(cfg.Log, filepath.Base(os.Args[0]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.Config
	}
	// Signals are ours before the lock is: a SIGTERM that comes while qrun
	// confines itself ends it cleanly, not by the default action.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	wake := make(chan os.Signal, 1)
	signal.Notify(wake, syscall.SIGUSR1)
	lock, err := sp.TryLock()
	if errors.Is(err, spool.ErrLocked) {
		// Overlaps are harmless: say so only to a person, not to cron's mail.
		if maillog.StderrInteractive() {
			fmt.Fprintln(os.Stderr, "qrun: another qrun is working on", cfg.Spool.Dir, "- nothing to do")
		}
		return sysexits.OK
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.TempFail
	}
	defer lock.Unlock()
	if code := confine(cfg, sp.Dir, metrics, log); code != sysexits.OK {
		return code
	}

	every := cfg.Delivery.Interval.Duration
	if interval > 0 {
		every = interval
	}
	for {
		tr, err := delivery.FromConfig(cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", err)
			return sysexits.Config
		}
		tr.SetTLSPolicyLog(func(ev string, kv ...any) { log.Event(maillog.Info, ev, kv...) })
		tr.SetLog(log)
		var d delivery.Deliverer = tr
		if len(cfg.Local.Domains) > 0 {
			d = &mailbox.Local{Config: cfg, Remote: tr, Spool: sp, Wrap: programWrap(cfg)}
		}
		if cfg.TLSPolicy.TLSRPT {
			sendTLSReports(ctx, cfg, sp, log)
		}
		r := &runner.Runner{Spool: sp, Config: cfg, Log: log, Deliverer: d}
		st, err := r.Run(ctx)
		log.Event(maillog.Info, "pass", "scanned", st.Scanned, "due", st.Due, "sent", st.Sent, "deferred", st.Deferred,
			"failed", st.Failed, "dsns", st.Bounces+st.Warnings, "removed", st.Removed, "moved_aside", st.MovedAside, "errors", st.Errors)
		if metrics != "" {
			if err := runner.WriteMetrics(metrics, sp, st, time.Now()); err != nil {
				log.Event(maillog.Error, "error", "stage", "metrics", "err", err)
				if once { // monitoring that reads a stale file must hear of it
					fmt.Fprintln(os.Stderr, "qrun:", err)
					defer func() {
						if code == sysexits.OK {
							code = sysexits.IOErr
						}
					}()
				}
			}
		}
		if err != nil {
			log.Event(maillog.Error, "error", "stage", "pass", "err", err)
			if once {
				fmt.Fprintln(os.Stderr, "qrun:", err)
				return sysexits.IOErr
			}
		}
		if once {
			if st.Due > 0 && maillog.StderrInteractive() {
				fmt.Fprintln(os.Stderr, "qrun:", st.Summary())
			}
			return st.ExitCode()
		}
		select {
		case <-ctx.Done():
			return sysexits.OK
		case <-wake:
		case <-time.After(every):
		}
	}
}

// createSpool makes the spool as root for the run user, or as the run user
// itself: mode 0700 throughout, so only mail reads mail.
func createSpool(cfg *config.Config) error {
	if os.Geteuid() != 0 {
		_, err := spool.Create(cfg.Spool.Dir, spool.Ops{})
		return err
	}
	id, err := privilege.Lookup(cfg.RunAs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Spool.Dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(cfg.Spool.Dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.Chown(cfg.Spool.Dir, id.UID, id.GID); err != nil {
		return err
	}
	if _, err := privilege.Drop(cfg.RunAs); err != nil {
		return err
	}
	_, err = spool.Create(cfg.Spool.Dir, spool.Ops{})
	return err
}
