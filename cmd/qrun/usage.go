package main

import (
	"flag"
	"io"
)

// helpText is what qrun -h prints (on stdout, exit 0), before usage.
const helpText = `qrun is the queue runner of smtp-bs: it delivers what smtp-bs spooled (to
smarthosts, per-domain routes, MX hosts, or on this host), records each
recipient's outcome, retries with backoff and bounces what failed for good.
One pass with -once (cron, a systemd timer) or a loop; only one qrun delivers
from a spool at a time (a second one exits 0). The queue tools work while
another qrun delivers. Started as root it becomes run_as first.

`

// exitText lists the exit codes of every mode.
const exitText = `
exit codes (sysexits):
  0   done: everything due was delivered (or nothing was due); another qrun holds the lock
  64  bad flags or arguments
  65  a queue ID that is not in the queue (-show, -hold, -release, -delete, -bounce);
      -route: not an address
  69  -once: some recipients failed for good and were bounced; -route: it would bounce or be refused
  74  the spool could not be read (missing, unreadable: run qrun -check, or qrun -init)
      or a local error kept messages from being handled; the metrics file could not be written
  73  -init could not create the spool
  75  -once: some recipients were deferred; -route: it would be deferred
  77  permission: could not become run_as; -check found a problem
  78  configuration error
See qrun(8), smtp-bs-queue(5), smtp-bs.toml(5) and README.md.
`

// help writes the whole -h text: what qrun is, every mode, every flag,
// the exit codes.
func help(w io.Writer, fs *flag.FlagSet) {
	io.WriteString(w, helpText)
	io.WriteString(w, usage+"\n\noptions:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	io.WriteString(w, exitText)
}
