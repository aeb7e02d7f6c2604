// Package runner is qrun's queue pass: deliver what is due, record each
// recipient's outcome durably, bounce what failed for good, reschedule
// the rest.
//
// Only one runner works on a spool at a time (qrun holds the spool lock).
// Outcomes are appended to the message's state log and fsynced right after
// the transaction that produced them, before anything else happens, so a
// crash can repeat a delivery but never lose one.
package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/delivery"
	"smtp-bs/pkg/dsn"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/spool"
)

// Runner makes passes over one spool.
type Runner struct {
	Spool     *spool.Spool
	Config    *config.Config
	Deliverer delivery.Deliverer
	Log       *maillog.Logger
	// Jitter returns a factor in [0,1) spreading retries; nil means random.
	Jitter func() float64
}

// Stats counts what one pass did.
type Stats struct {
	Scanned, Due                 int
	Sent, Deferred, Failed       int // recipients
	Bounces, Removed, MovedAside int
	Errors                       int // messages a local error kept from being handled
}

// Pass handles every message that is due. It stops starting new messages
// when ctx is done; a delivery under way is finished and recorded first.
func (r *Runner) Pass(ctx context.Context) (Stats, error) {
	var st Stats
	// Nothing that was never committed can live longer than a session.
	stale := 2 * r.Config.SMTP.SessionTimeout.Duration
	if stale < time.Hour {
		stale = time.Hour
	}
	r.Spool.CleanStale(stale, func(p string) {
		r.Log.Event(maillog.Info, "cleanup", "file", p, "reason", "never committed")
	})
	entries, err := r.Spool.Scan(func(name string, err error) {
		st.MovedAside++
		r.Log.Event(maillog.Warning, "moved-aside", "file", name, "err", err)
	})
	if err != nil {
		return st, err
	}
	now := r.Spool.Now()
	bounceBudget := r.Config.Delivery.MaxBouncesPass
	for _, e := range entries {
		st.Scanned++
		if e.Held || e.NextTry.After(now) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		st.Due++
		if err := r.handle(e.ID, &st, &bounceBudget); err != nil {
			st.Errors++
			r.Log.Event(maillog.Error, "error", "id", e.ID, "err", err)
		}
	}
	return st, nil
}

// handle makes one attempt at one message. The delivery itself gets a
// fresh context: a signal must not cut a transaction in half.
func (r *Runner) handle(id string, st *Stats, bounceBudget *int) error {
	env, err := r.Spool.ReadEnvelope(id)
	if err != nil {
		return r.aside(id, err, st)
	}
	state, err := r.Spool.ReadState(env)
	if err != nil {
		return r.aside(id, err, st)
	}
	if state.Damaged > 0 {
		r.Log.Event(maillog.Warning, "state-damaged", "id", id, "lines", state.Damaged, "note", "ignored; affected recipients are tried again")
	}
	now := r.Spool.Now()
	var pending []int
	for i, rc := range state.Rcpts {
		if rc.Status == spool.Pending || rc.Status == spool.Deferred {
			pending = append(pending, i)
		}
	}
	if len(pending) > 0 {
		var results []delivery.Result
		if now.Sub(env.Received) > r.Config.Delivery.Lifetime.Duration {
			for _, i := range pending {
				reason := "message expired after " + r.Config.Delivery.Lifetime.String() + " in the queue"
				if last := state.Rcpts[i].Reply; last != "" {
					reason += "; last error: " + last
				}
				results = append(results, delivery.Result{Rcpt: i, Status: spool.Failed, Reply: "4.4.7 " + reason})
			}
		} else {
			data, err := r.Spool.OpenData(env)
			if err != nil {
				return r.aside(id, err, st)
			}
			results = r.Deliverer.Deliver(context.Background(), env, pending, data)
			data.Close()
		}
		if err := r.record(env, results, st); err != nil {
			return err
		}
		if state, err = r.Spool.ReadState(env); err != nil {
			return err
		}
	}
	if err := r.bounce(env, state, st, bounceBudget); err != nil {
		return err
	}
	if finished(state, env) {
		if err := r.Spool.Remove(id); err != nil {
			return err
		}
		st.Removed++
		r.Log.Event(maillog.Info, "removed", "id", id, "reason", "all recipients done")
		return nil
	}
	next := r.nextTry(state, now)
	return r.Spool.SetNextTry(id, next)
}

// finished: every recipient is final and every failure has been reported
// (or needs no report, the sender being <>).
func finished(st *spool.State, env *spool.Envelope) bool {
	if !st.Done() {
		return false
	}
	for _, rc := range st.Rcpts {
		if rc.Status == spool.Failed && rc.Bounced == "" && env.From != "" {
			return false
		}
	}
	return true
}

func (r *Runner) record(env *spool.Envelope, results []delivery.Result, st *Stats) error {
	now := r.Spool.Now()
	recs := make([]spool.Record, 0, len(results))
	for _, res := range results {
		recs = append(recs, spool.Record{Time: now, Kind: string(res.Status), Rcpt: res.Rcpt, Detail: res.Reply})
	}
	if err := r.Spool.Append(env.ID, recs...); err != nil {
		return fmt.Errorf("runner: record outcomes of %s: %w", env.ID, err)
	}
	for _, res := range results {
		ev, lv := "sent", maillog.Info
		switch res.Status {
		case spool.Sent:
			st.Sent++
		case spool.Deferred:
			st.Deferred++
			ev = "deferred"
		case spool.Failed:
			st.Failed++
			ev, lv = "bounced", maillog.Warning
		}
		r.Log.Event(lv, ev, "id", env.ID, "from", "<"+env.From+">", "rcpt", "<"+env.Rcpts[res.Rcpt]+">", "reply", res.Reply)
	}
	return nil
}

// bounce reports recipients that failed and are not reported yet, in one
// DSN per event. The DSN's queue ID is derived from the original's, so a
// crash between queueing it and recording that finds it already queued.
func (r *Runner) bounce(env *spool.Envelope, st *spool.State, stats *Stats, budget *int) error {
	var idx []int
	for i, rc := range st.Rcpts {
		if rc.Status == spool.Failed && rc.Bounced == "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	now := r.Spool.Now()
	if env.From == "" {
		// Never bounce a bounce; the log has the failure.
		recs := make([]spool.Record, len(idx))
		for k, i := range idx {
			recs[k] = spool.Record{Time: now, Kind: "bounced", Rcpt: i, Detail: "-"}
		}
		return r.Spool.Append(env.ID, recs...)
	}
	if *budget <= 0 {
		return nil // the next pass sends it; a storm is capped
	}
	*budget--
	bid := fmt.Sprintf("%s.b%d", env.ID, st.Bounces+1)
	rep := dsn.Report{
		Hostname: r.Config.Hostname, QueueID: env.ID, MessageID: bid, Sender: env.From,
		Arrival: env.Received, Date: now, Action: "failed",
	}
	for _, i := range idx {
		rc := st.Rcpts[i]
		remote, _, ok := strings.Cut(rc.Reply, " said: ")
		if !ok {
			remote = ""
		}
		rep.Failures = append(rep.Failures, dsn.Failure{Rcpt: rc.Addr, Reply: rc.Reply, RemoteMTA: hostOnly(remote), LastAttempt: rc.Time})
	}
	var content []byte
	if data, err := r.Spool.OpenData(env); err == nil {
		content = dsn.Build(rep, data)
		data.Close()
	} else {
		content = dsn.Build(rep, nil)
	}
	benv := &spool.Envelope{
		ID: bid, Received: now, From: "", Rcpts: []string{env.From}, Peer: "local",
		Helo: r.Config.Hostname, Protocol: "local", Body: "8BITMIME", UTF8: !isASCII(env.From),
	}
	err := r.Spool.Enqueue(benv, content)
	if err != nil && !errors.Is(err, spool.ErrExists) {
		return fmt.Errorf("runner: queue bounce for %s: %w", env.ID, err)
	}
	recs := make([]spool.Record, len(idx))
	for k, i := range idx {
		recs[k] = spool.Record{Time: now, Kind: "bounced", Rcpt: i, Detail: bid}
		st.Rcpts[i].Bounced = bid
	}
	if err := r.Spool.Append(env.ID, recs...); err != nil {
		return err
	}
	stats.Bounces++
	r.Log.Event(maillog.Info, "dsn", "id", env.ID, "dsn_id", bid, "to", "<"+env.From+">", "nrcpts", len(idx))
	return nil
}

// nextTry follows the retry table: retry_first after the first failed
// attempt, doubling each time, capped at retry_max, plus up to 10% jitter.
func (r *Runner) nextTry(st *spool.State, now time.Time) time.Time {
	attempts := 0
	for _, rc := range st.Rcpts {
		if rc.Status == spool.Deferred && rc.Attempts > attempts {
			attempts = rc.Attempts
		}
	}
	d := Backoff(r.Config.Delivery.RetryFirst.Duration, r.Config.Delivery.RetryMax.Duration, attempts)
	j := r.Jitter
	if j == nil {
		j = rand.Float64
	}
	return now.Add(d + time.Duration(j()*0.1*float64(d)))
}

// Backoff is the delay after the given number of failed attempts (>= 1),
// before jitter: first, 2*first, 4*first, ... capped at max.
func Backoff(first, max time.Duration, attempts int) time.Duration {
	d := first
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}

func (r *Runner) aside(id string, cause error, st *Stats) error {
	if !errors.Is(cause, spool.ErrCorrupt) && !errors.Is(cause, spool.ErrFutureVersion) {
		return cause
	}
	st.MovedAside++
	if err := r.Spool.MoveAside(id); err != nil {
		return fmt.Errorf("runner: move %s aside (%v): %w", id, cause, err)
	}
	r.Log.Event(maillog.Error, "moved-aside", "id", id, "dir", "corrupt/", "err", cause)
	return nil
}

func hostOnly(s string) string {
	if h, _, ok := strings.Cut(s, ":"); ok && !strings.HasPrefix(s, "[") {
		return h
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
