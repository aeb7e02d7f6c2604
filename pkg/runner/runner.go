// Package runner is qrun's queue pass: deliver what is due, record each
// recipient's outcome durably, bounce what failed for good, reschedule
// the rest.
//
// Only one runner works on a spool at a time (qrun holds the spool lock).
// Outcomes are appended to the message's state log and fsynced right after
// the transaction that produced them, before anything else happens, so a
// crash can repeat a delivery but never lose one. Deliveries run
// concurrently, at most max_concurrency at once and max_per_destination
// to any one destination.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"smtp-bs/pkg/address"
	"strings"
	"sync"
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
	Scanned, Due           int
	Sent, Deferred, Failed int // recipients
	Bounces, Warnings      int // DSNs queued
	Removed, MovedAside    int
	Errors                 int // messages a local error kept from being handled
	mu                     sync.Mutex
	handled                map[string]bool // IDs this pass took up
}

func (s *Stats) add(f func(*Stats)) {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
}

// Run makes a pass, then up to two more while passes queue new messages
// (bounces, warnings, alias expansions), so that those go out now rather
// than a whole interval later.
func (r *Runner) Run(ctx context.Context) (*Stats, error) {
	total := &Stats{}
	// Connections kept for reuse between messages end with the run.
	if c, ok := r.Deliverer.(interface{ CloseIdle() }); ok {
		defer c.CloseIdle()
	}
	for i := 0; i < 3; i++ {
		st, err := r.Pass(ctx)
		total.merge(st, i == 0)
		if err != nil || st.Due == 0 || ctx.Err() != nil || !r.newWork(st.handled) {
			return total, err
		}
	}
	return total, nil
}

// newWork reports whether something is due that the pass did not handle.
func (r *Runner) newWork(handled map[string]bool) bool {
	ents, err := r.Spool.Scan(nil)
	if err != nil {
		return false
	}
	now := r.Spool.Now()
	for _, e := range ents {
		if !e.Held && !e.NextTry.After(now) && !handled[e.ID] {
			return true
		}
	}
	return false
}

func (s *Stats) merge(o *Stats, first bool) {
	if first {
		s.Scanned = o.Scanned
	}
	s.Due += o.Due
	s.Sent += o.Sent
	s.Deferred += o.Deferred
	s.Failed += o.Failed
	s.Bounces += o.Bounces
	s.Warnings += o.Warnings
	s.Removed += o.Removed
	s.MovedAside += o.MovedAside
	s.Errors += o.Errors
}

// Pass handles every message that is due. It stops starting new messages
// when ctx is done; deliveries under way are finished and recorded first.
func (r *Runner) Pass(ctx context.Context) (*Stats, error) {
	st := &Stats{handled: map[string]bool{}}
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
	d := r.Config.Delivery
	p := &pass{
		r: r, st: st,
		global:       make(chan struct{}, d.MaxConcurrency),
		messages:     make(chan struct{}, 2*d.MaxConcurrency),
		perDest:      map[string]chan struct{}{},
		bounceBudget: d.MaxBouncesPass,
	}
	var wg sync.WaitGroup
	for _, e := range entries {
		st.Scanned++
		if e.Held {
			continue
		}
		if e.NextTry.After(now) {
			continue
		}
		if ctx.Err() != nil {
			continue
		}
		st.Due++
		st.handled[e.ID] = true
		p.messages <- struct{}{}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			defer func() { <-p.messages }()
			if err := p.handle(id); err != nil {
				st.add(func(s *Stats) { s.Errors++ })
				r.Log.Event(maillog.Error, "error", "id", id, "err", err)
			}
		}(e.ID)
	}
	wg.Wait()
	return st, nil
}

// pass holds the limits of one pass.
type pass struct {
	r            *Runner
	st           *Stats
	global       chan struct{} // deliveries at once
	messages     chan struct{} // messages in hand at once
	mu           sync.Mutex
	perDest      map[string]chan struct{}
	bounceBudget int
}

func (p *pass) destSlot(key string) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.perDest[key]
	if !ok {
		c = make(chan struct{}, p.r.Config.Delivery.MaxPerDestination)
		p.perDest[key] = c
	}
	return c
}

func (p *pass) takeBounce() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bounceBudget <= 0 {
		return false
	}
	p.bounceBudget--
	return true
}

// handle makes one attempt at one message. Deliveries get a fresh context:
// a signal must not cut a transaction in half.
func (p *pass) handle(id string) error {
	r := p.r
	env, err := r.Spool.ReadEnvelope(id)
	if err != nil {
		return r.aside(id, err, p.st)
	}
	state, err := r.Spool.ReadState(env)
	if err != nil {
		return r.aside(id, err, p.st)
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
		if now.Sub(env.Received) > r.Config.Delivery.Lifetime.Duration {
			var results []delivery.Result
			for _, i := range pending {
				reason := "4.4.7 message expired after " + r.Config.Delivery.Lifetime.String() + " in the queue"
				if last := state.Rcpts[i].Reply; last != "" {
					reason += "; last error: " + last
				}
				results = append(results, delivery.Result{Rcpt: i, Status: spool.Failed, Reply: reason})
			}
			if err := r.record(env, results, p.st); err != nil {
				return err
			}
		} else if err := p.deliver(env, pending); err != nil {
			return err
		}
		if state, err = r.Spool.ReadState(env); err != nil {
			return err
		}
	}
	if err := p.bounce(env, state); err != nil {
		return err
	}
	if finished(state, env) {
		if err := r.Spool.Remove(id); err != nil {
			return err
		}
		p.st.add(func(s *Stats) { s.Removed++ })
		r.Log.Event(maillog.Info, "removed", "id", id, "reason", "all recipients done")
		return nil
	}
	if err := p.warn(env, state); err != nil {
		return err
	}
	return r.Spool.SetNextTry(id, r.nextTry(state, now))
}

// deliver splits the pending recipients by destination and runs one
// transaction per destination, each recorded as soon as it ends.
func (p *pass) deliver(env *spool.Envelope, pending []int) error {
	r := p.r
	groups := map[string][]int{}
	dests := map[string]delivery.Destination{}
	var order []string
	for _, i := range pending {
		d := r.Deliverer.Route(env.Rcpts[i])
		if _, ok := groups[d.Key]; !ok {
			order = append(order, d.Key)
			dests[d.Key] = d
		}
		groups[d.Key] = append(groups[d.Key], i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, key := range order {
		wg.Add(1)
		go func(d delivery.Destination, rcpts []int) {
			defer wg.Done()
			slot := p.destSlot(d.Key)
			slot <- struct{}{}
			p.global <- struct{}{}
			defer func() { <-p.global; <-slot }()
			data, err := r.Spool.OpenData(env)
			var results []delivery.Result
			if err == nil {
				data.MarkDelivering()
				results = r.Deliverer.Deliver(context.Background(), d, env, rcpts, io.NewSectionReader(data, 0, env.Size))
				data.Close()
				mu.Lock()
				err = r.record(env, results, p.st)
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}(dests[key], groups[key])
	}
	wg.Wait()
	if firstErr != nil && (errors.Is(firstErr, spool.ErrCorrupt) || errors.Is(firstErr, spool.ErrFutureVersion)) {
		return r.aside(env.ID, firstErr, p.st)
	}
	return firstErr
}

// finished: every recipient is final and every failure has been reported
// (or needs no report, the sender being <>).
func finished(st *spool.State, env *spool.Envelope) bool {
	if !st.Done() {
		return false
	}
	for _, rc := range st.Rcpts {
		if rc.Status == spool.Failed && rc.Bounced == "" {
			return false
		}
	}
	return true
}

func (r *Runner) record(env *spool.Envelope, results []delivery.Result, st *Stats) error {
	if len(results) == 0 {
		return nil
	}
	now := r.Spool.Now()
	// Before the outcomes are recorded: a crash in between delivers again
	// and queues the same notice under the same ID, which is then kept.
	if err := r.notifySuccess(env, results, now); err != nil {
		return err
	}
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
			st.add(func(s *Stats) { s.Sent++ })
		case spool.Deferred:
			st.add(func(s *Stats) { s.Deferred++ })
			ev = "deferred"
		case spool.Failed:
			st.add(func(s *Stats) { s.Failed++ })
			ev, lv = "bounced", maillog.Warning
		}
		kv := []any{"id", env.ID, "from", "<" + env.From + ">", "rcpt", "<" + env.Rcpts[res.Rcpt] + ">", "reply", res.Reply}
		if res.Detail != "" {
			kv = append(kv, "detail", res.Detail)
		}
		r.Log.Event(lv, ev, kv...)
	}
	return nil
}

// notifySuccess queues the success DSN that recipients with
// NOTIFY=SUCCESS asked for (RFC 3461 6.2): "delivered" for a mailbox here,
// "relayed" for a next hop that does not take DSN onward. One notice per
// transaction, its ID derived from the message's and the first recipient's.
func (r *Runner) notifySuccess(env *spool.Envelope, results []delivery.Result, now time.Time) error {
	if env.From == "" {
		return nil
	}
	byAction := map[string][]delivery.Result{}
	for _, res := range results {
		if res.Status != spool.Sent || res.DSNOnward || !env.Wants(env.Rcpts[res.Rcpt], "SUCCESS") {
			continue
		}
		action := "relayed"
		if res.Final {
			action = "delivered"
		}
		byAction[action] = append(byAction[action], res)
	}
	for _, action := range []string{"delivered", "relayed"} {
		list := byAction[action]
		if len(list) == 0 {
			continue
		}
		id := fmt.Sprintf("%s.s%d", env.ID, list[0].Rcpt)
		rep := dsn.Report{Hostname: r.Config.Hostname, QueueID: env.ID, MessageID: id, Sender: env.From,
			Arrival: env.Received, Date: now, Action: action, EnvID: env.EnvID,
			SMTPUTF8: env.UTF8 && !address.IsASCII(strings.Join(append([]string{env.From}, env.Rcpts...), ""))}
		for _, res := range list {
			a := env.Rcpts[res.Rcpt]
			rep.Failures = append(rep.Failures, dsn.Failure{Rcpt: a, ORcpt: env.DSN[a].ORcpt, Reply: res.Reply, RemoteMTA: remoteMTA(res.Reply), LastAttempt: now})
		}
		var content []byte
		if data, err := r.Spool.OpenData(env); err == nil {
			content = dsn.Build(rep, data)
			data.Close()
		} else {
			content = dsn.Build(rep, nil)
		}
		nenv := &spool.Envelope{ID: id, Received: now, From: "", Rcpts: []string{env.From}, Peer: "local",
			Helo: r.Config.Hostname, Protocol: "local", Body: "8BITMIME", UTF8: !address.IsASCII(env.From)}
		if err := r.Spool.Enqueue(nenv, content); err != nil && !errors.Is(err, spool.ErrExists) {
			return fmt.Errorf("runner: queue success notice for %s: %w", env.ID, err)
		}
		r.Log.Event(maillog.Info, "dsn", "id", env.ID, "dsn_id", id, "to", "<"+env.From+">", "action", action, "nrcpts", len(list))
	}
	return nil
}

// bounce reports recipients that failed and are not reported yet, in one
// DSN per event. The DSN's queue ID is derived from the original's, so a
// crash between queueing it and recording that finds it already queued.
func (p *pass) bounce(env *spool.Envelope, st *spool.State) error {
	r := p.r
	var idx []int
	for i, rc := range st.Rcpts {
		if rc.Status == spool.Failed && rc.Bounced == "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if env.From != "" {
		// RFC 3461: a recipient whose NOTIFY leaves out FAILURE (NEVER,
		// or SUCCESS and DELAY only) gets no bounce.
		var quiet, loud []int
		for _, i := range idx {
			if env.Wants(env.Rcpts[i], "FAILURE") {
				loud = append(loud, i)
			} else {
				quiet = append(quiet, i)
			}
		}
		if len(quiet) > 0 {
			if err := r.markBounced(env, st, quiet, "-"); err != nil {
				return err
			}
			r.Log.Event(maillog.Info, "dsn", "id", env.ID, "action", "failed", "nrcpts", len(quiet), "note", "none sent: NOTIFY has no FAILURE")
		}
		if idx = loud; len(idx) == 0 {
			return nil
		}
	}
	now := r.Spool.Now()
	to, bid := env.From, fmt.Sprintf("%s.b%d", env.ID, st.Bounces+1)
	if env.From == "" {
		// Never bounce a bounce. The postmaster, if configured, hears of
		// it once; a failed notice to the postmaster is only logged.
		to, bid = r.Config.Delivery.Postmaster, env.ID+".p"
		if to == "" || strings.HasSuffix(env.ID, ".p") {
			return r.markBounced(env, st, idx, "-")
		}
	}
	if !p.takeBounce() {
		return nil // the next pass sends it; a storm is capped
	}
	content := r.report(env, st, idx, "failed", bid, to, now)
	benv := &spool.Envelope{
		ID: bid, Received: now, From: "", Rcpts: []string{to}, Peer: "local",
		Helo: r.Config.Hostname, Protocol: "local", Body: "8BITMIME", UTF8: !address.IsASCII(to),
	}
	if err := r.Spool.Enqueue(benv, content); err != nil && !errors.Is(err, spool.ErrExists) {
		return fmt.Errorf("runner: queue bounce for %s: %w", env.ID, err)
	}
	if err := r.markBounced(env, st, idx, bid); err != nil {
		return err
	}
	p.st.add(func(s *Stats) { s.Bounces++ })
	r.Log.Event(maillog.Info, "dsn", "id", env.ID, "dsn_id", bid, "to", "<"+to+">", "action", "failed", "nrcpts", len(idx))
	return nil
}

func (r *Runner) markBounced(env *spool.Envelope, st *spool.State, idx []int, detail string) error {
	now := r.Spool.Now()
	recs := make([]spool.Record, len(idx))
	for k, i := range idx {
		recs[k] = spool.Record{Time: now, Kind: "bounced", Rcpt: i, Detail: detail}
		st.Rcpts[i].Bounced = detail
	}
	return r.Spool.Append(env.ID, recs...)
}

// warn sends the optional delay warning, once per message.
func (p *pass) warn(env *spool.Envelope, st *spool.State) error {
	r := p.r
	after := r.Config.Delivery.DelayWarning.Duration
	now := r.Spool.Now()
	if after <= 0 || st.Warned || env.From == "" || now.Sub(env.Received) < after {
		return nil
	}
	var idx []int
	for i, rc := range st.Rcpts {
		if (rc.Status == spool.Deferred || rc.Status == spool.Pending) && env.Wants(env.Rcpts[i], "DELAY") {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 || !p.takeBounce() {
		return nil
	}
	wid := env.ID + ".w"
	content := r.report(env, st, idx, "delayed", wid, env.From, now)
	wenv := &spool.Envelope{
		ID: wid, Received: now, From: "", Rcpts: []string{env.From}, Peer: "local",
		Helo: r.Config.Hostname, Protocol: "local", Body: "8BITMIME", UTF8: !address.IsASCII(env.From),
	}
	if err := r.Spool.Enqueue(wenv, content); err != nil && !errors.Is(err, spool.ErrExists) {
		return fmt.Errorf("runner: queue delay warning for %s: %w", env.ID, err)
	}
	if err := r.Spool.Append(env.ID, spool.Record{Time: now, Kind: "warned", Rcpt: 0, Detail: wid}); err != nil {
		return err
	}
	p.st.add(func(s *Stats) { s.Warnings++ })
	r.Log.Event(maillog.Info, "dsn", "id", env.ID, "dsn_id", wid, "to", "<"+env.From+">", "action", "delayed", "nrcpts", len(idx))
	return nil
}

// report renders a DSN about recipients idx of env.
func (r *Runner) report(env *spool.Envelope, st *spool.State, idx []int, action, id, to string, now time.Time) []byte {
	rep := dsn.Report{
		Hostname: r.Config.Hostname, QueueID: env.ID, MessageID: id, Sender: to,
		Arrival: env.Received, Date: now, Action: action,
		SMTPUTF8: env.UTF8 && !address.IsASCII(strings.Join(append([]string{env.From}, env.Rcpts...), "")),
		EnvID:    env.EnvID, Ret: env.Ret,
	}
	for _, i := range idx {
		rc := st.Rcpts[i]
		remote := remoteMTA(rc.Reply)
		reply := rc.Reply
		if reply == "" {
			reply = "not tried yet"
		}
		rep.Failures = append(rep.Failures, dsn.Failure{Rcpt: rc.Addr, ORcpt: env.DSN[rc.Addr].ORcpt, Reply: reply, RemoteMTA: remote, LastAttempt: rc.Time})
	}
	if data, err := r.Spool.OpenData(env); err == nil {
		defer data.Close()
		return dsn.Build(rep, data)
	}
	return dsn.Build(rep, nil)
}

// remoteMTA is the host in a reply recorded as "HOST said: ...", also
// after an expiry's "...; last error: ", or "" when there is none: the
// Remote-MTA field of a DSN holds a host name (RFC 3464 2.3.5), never
// the text of a local error that happens to contain " said: ".
func remoteMTA(reply string) string {
	if strings.HasPrefix(reply, "4.4.7 ") {
		if _, last, ok := strings.Cut(reply, "; last error: "); ok {
			reply = last
		}
	}
	host, _, ok := strings.Cut(reply, " said: ")
	if !ok || host == "" || len(host) > 255 {
		return ""
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.:[]", c) >= 0) {
			return ""
		}
	}
	return host
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
	st.add(func(s *Stats) { s.MovedAside++ })
	if err := r.Spool.MoveAside(id); err != nil {
		return fmt.Errorf("runner: move %s aside (%v): %w", id, cause, err)
	}
	r.Log.Event(maillog.Error, "moved-aside", "id", id, "dir", "corrupt/", "err", cause)
	return nil
}
