package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"smtp-bs/pkg/spool"
)

// The queue tools change one message (or all) and work while another qrun
// runs: each is a rename, an mtime or an appended line, all of which the
// runner tolerates happening under it.

// Flush makes messages due now: all of them when ids is empty.
func Flush(sp *spool.Spool, ids []string) (int, error) {
	if len(ids) == 0 {
		ents, err := sp.Scan(nil)
		if err != nil {
			return 0, err
		}
		for _, e := range ents {
			if !e.Held {
				ids = append(ids, e.ID)
			}
		}
	}
	now := sp.Now()
	n := 0
	for _, id := range ids {
		if err := sp.SetNextTry(id, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Bounce gives up on every recipient of id not yet delivered; the next
// pass sends the bounce and removes the message.
func Bounce(sp *spool.Spool, id, why string) error {
	env, err := sp.ReadEnvelope(id)
	if err != nil {
		return err
	}
	st, err := sp.ReadState(env)
	if err != nil {
		return err
	}
	now := sp.Now()
	var recs []spool.Record
	for i, rc := range st.Rcpts {
		if rc.Status == spool.Pending || rc.Status == spool.Deferred {
			recs = append(recs, spool.Record{Time: now, Kind: string(spool.Failed), Rcpt: i, Detail: "5.0.0 " + why})
		}
	}
	if len(recs) == 0 {
		return fmt.Errorf("%s: no recipient left to bounce", id)
	}
	if err := sp.Append(id, recs...); err != nil {
		return err
	}
	_ = sp.Release(id) // if it was held, bring it back so the bounce goes out
	return sp.SetNextTry(id, now)
}

// WriteMetrics writes a Prometheus textfile for node_exporter's textfile
// collector, atomically (a temporary file renamed over the old one).
func WriteMetrics(path string, sp *spool.Spool, st *Stats, at time.Time) error {
	ents, err := sp.Scan(nil)
	if err != nil {
		return err
	}
	var held int
	var oldest time.Duration
	now := sp.Now()
	for _, e := range ents {
		if e.Held {
			held++
		}
		if t, ok := spool.IDTime(e.ID); ok && now.Sub(t) > oldest {
			oldest = now.Sub(t)
		}
	}
	var b strings.Builder
	metric := func(name, help, typ string, v float64, labels ...string) {
		if !strings.Contains(b.String(), "# HELP "+name+" ") {
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		}
		fmt.Fprintf(&b, "%s%s %g\n", name, strings.Join(labels, ""), v)
	}
	metric("smtpbs_queue_messages", "Messages in the queue, held ones included.", "gauge", float64(len(ents)))
	metric("smtpbs_queue_held_messages", "Messages on hold.", "gauge", float64(held))
	metric("smtpbs_queue_oldest_message_age_seconds", "Age of the oldest queued message.", "gauge", oldest.Seconds())
	if st != nil {
		for _, o := range []struct {
			k string
			v int
		}{{"sent", st.Sent}, {"deferred", st.Deferred}, {"bounced", st.Failed}} {
			metric("smtpbs_last_pass_recipients", "Recipients by outcome in the last qrun pass.", "gauge", float64(o.v), `{outcome="`+o.k+`"}`)
		}
		metric("smtpbs_last_pass_dsns", "Bounces and delay warnings queued by the last pass.", "gauge", float64(st.Bounces+st.Warnings))
		metric("smtpbs_last_pass_errors", "Messages a local error kept from being handled in the last pass.", "gauge", float64(st.Errors))
		metric("smtpbs_last_pass_timestamp_seconds", "When the last pass ended.", "gauge", float64(at.Unix()))
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("runner: metrics: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("runner: metrics: %w", err)
	}
	return nil
}

// ExitCode tells cron and monitoring how a pass went (sysexits):
// 0 everything due was delivered (or nothing was due), 75 some recipients
// were deferred, 69 some failed for good (bounced), 74 a local error kept
// messages from being handled.
func (st *Stats) ExitCode() int {
	switch {
	case st.Errors > 0:
		return 74
	case st.Deferred > 0:
		return 75
	case st.Failed > 0:
		return 69
	}
	return 0
}

// Summary is a one-line human account of a pass.
// Due counts the follow-up passes too (the bounces and forwards a pass
// queued), so it may exceed what the first scan found.
func (st *Stats) Summary() string {
	return fmt.Sprintf("%s in the queue, %s handled (follow-up passes included): recipients %d sent, %d deferred, %d bounced; %s queued, %d removed, %d moved aside, %s",
		plural(st.Scanned, "message"), plural(st.Due, "message"), st.Sent, st.Deferred, st.Failed,
		plural(st.Bounces+st.Warnings, "DSN"), st.Removed, st.MovedAside, plural(st.Errors, "error"))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
