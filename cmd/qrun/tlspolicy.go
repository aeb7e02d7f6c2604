package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
	"smtp-bs/pkg/tlspolicy"
)

// forgetTLS is qrun -tls-forget DOMAIN: the next delivery to DOMAIN takes
// what TLS it finds again.
func forgetTLS(cfg *config.Config, domain string) int {
	ok, err := tlspolicy.Forget(filepath.Join(cfg.Spool.Dir, tlspolicy.DirName), domain)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "qrun:", err)
		return sysexits.TempFail
	case !ok:
		fmt.Printf("qrun: no TLS level was remembered for %s\n", domain)
	default:
		fmt.Printf("qrun: forgot the TLS level remembered for %s\n", domain)
	}
	return sysexits.OK
}

// sendTLSReports queues the TLSRPT reports of the days that have ended;
// the pass that follows delivers them like any message.
func sendTLSReports(ctx context.Context, cfg *config.Config, sp *spool.Spool, log *maillog.Logger) {
	o := tlspolicy.OptionsFromConfig(cfg, nil)
	o.Log = func(ev string, kv ...any) { log.Event(maillog.Info, ev, kv...) }
	pol, err := tlspolicy.New(o)
	if err == nil {
		_, err = pol.SendReports(ctx, sp, cfg.Hostname)
	}
	if err != nil {
		log.Event(maillog.Error, "error", "stage", "tlsrpt", "err", err)
	}
}
