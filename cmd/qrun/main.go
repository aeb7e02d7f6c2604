// Command qrun is the queue runner: one pass with -once (from cron or a
// systemd timer), or passes every -interval until SIGTERM. Only one qrun
// works on a spool at a time; a second one says so and exits 0. -list
// shows the queue and works while another qrun runs. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"smtp-bs/pkg/check"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/runner"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
)

var version = "dev"

func main() { os.Exit(run()) }

func run() int {
	syscall.Umask(0o077)
	fs := flag.NewFlagSet("qrun", flag.ContinueOnError)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file")
	once := fs.Bool("once", false, "make one pass over what is due, then exit")
	interval := fs.Duration("interval", 0, "time between passes without -once (default: [delivery] interval, 10m)")
	list := fs.Bool("list", false, "print the queue and exit")
	asJSON := fs.Bool("json", false, "with -list: print JSON")
	initSpool := fs.Bool("init", false, "create the spool directory tree (owned by run_as when run as root) and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	doCheck := fs.Bool("check", false, "audit the installation (owners, modes, run user), print what is wrong and how to fix it, exit 0, 77 or 78")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return sysexits.Usage
	}
	if *showVersion {
		fmt.Println("qrun", version)
		return sysexits.OK
	}
	if fs.NArg() > 0 || *asJSON && !*list {
		fmt.Fprintln(os.Stderr, "qrun: usage: qrun [-config FILE] [-once | -interval D | -list [-json]]")
		return sysexits.Usage
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	if *doCheck { // before anything drops privileges: works as root and as run_as
		return check.Main(os.Stdout, "qrun", *cfgPath, explicit)
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
	sp, err := spool.Open(cfg.Spool.Dir, spool.Ops{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.TempFail
	}
	if *list {
		items, err := runner.List(sp)
		if err != nil {
			fmt.Fprintln(os.Stderr, "qrun:", err)
			return sysexits.TempFail
		}
		if *asJSON {
			runner.WriteJSON(os.Stdout, items)
		} else {
			runner.WriteText(os.Stdout, items, time.Now())
		}
		return sysexits.OK
	}

	log, err := maillog.Open(cfg.Log, filepath.Base(os.Args[0]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.Config
	}
	lock, err := sp.TryLock()
	if errors.Is(err, spool.ErrLocked) {
		fmt.Fprintln(os.Stderr, "qrun: another qrun is working on", cfg.Spool.Dir, "- nothing to do")
		return sysexits.OK
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.TempFail
	}
	defer lock.Unlock()

	r := &runner.Runner{
		Spool:  sp,
		Config: cfg,
		Log:    log,
		Deliverer: &delivery.Smarthost{
			Addr:           cfg.Delivery.Smarthost,
			Hostname:       cfg.Hostname,
			ConnectTimeout: cfg.Delivery.ConnectTimeout.Duration,
			CommandTimeout: cfg.Delivery.CommandTimeout.Duration,
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	every := cfg.Delivery.Interval.Duration
	if *interval > 0 {
		every = *interval
	}
	for {
		st, err := r.Pass(ctx)
		log.Event(maillog.Info, "pass", "scanned", st.Scanned, "due", st.Due, "sent", st.Sent, "deferred", st.Deferred,
			"failed", st.Failed, "bounces", st.Bounces, "removed", st.Removed, "moved_aside", st.MovedAside, "errors", st.Errors)
		if err != nil {
			log.Event(maillog.Error, "error", "stage", "pass", "err", err)
			if *once {
				return sysexits.TempFail
			}
		}
		if *once {
			if st.Errors > 0 {
				return sysexits.TempFail
			}
			return sysexits.OK
		}
		select {
		case <-ctx.Done():
			return sysexits.OK
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
