package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// load is one intake workload: smtp-source with this many parallel
// sessions, one message per session (one handler process each).
type load struct {
	name     string
	sessions int
	size     int // payload bytes
	msgs     int
}

// loads are the intake loads -loads selects (1-based), all by default.
func (b *bench) loads() ([]load, error) {
	all := b.allLoads()
	if strings.TrimSpace(b.o.loads) == "" {
		return all, nil
	}
	var out []load
	for _, f := range strings.Split(b.o.loads, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || i < 1 || i > len(all) {
			return nil, fmt.Errorf("-loads: %q is not a load between 1 and %d", f, len(all))
		}
		out = append(out, all[i-1])
	}
	return out, nil
}

func (b *bench) allLoads() []load {
	if b.o.quick {
		return []load{
			{"1 session, 2 KB", 1, 2048, 20},
			{"8 sessions, 2 KB", 8, 2048, 40},
			{"32 sessions, 2 KB", 32, 2048, 64},
			{"8 sessions, 100 KB", 8, 100 << 10, 24},
		}
	}
	return []load{
		{"1 session, 2 KB", 1, 2048, 60},
		{"8 sessions, 2 KB", 8, 2048, 300},
		{"32 sessions, 2 KB", 32, 2048, 320},
		{"8 sessions, 100 KB", 8, 100 << 10, 160},
	}
}

// sample is one measured intake run of one handler.
type sample struct {
	rate     float64 // messages spooled per second of the client's run
	cpuMs    float64 // CPU of the launcher and all handlers, per message
	rssKB    int64   // the largest peak RSS of any one of them
	spooled  int
	sent     int
	logLines int
	queries  int64 // DNS queries the bench's server answered during the run
	clientOK bool
	errText  string
}

func (b *bench) smtpSource(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(b.root, "usr/sbin/smtp-source"), args...)
	cmd.Env = append(baseEnv(), "LD_LIBRARY_PATH="+filepath.Join(b.root, "usr/lib/postfix"))
	return cmd
}

// intakeRun resets h's spool, sends l through a fresh launcher and counts
// what reached the spool. keep skips the reset (the scale benchmark's
// full spool).
func (b *bench) intakeRun(h *handler, l load, keep bool) (sample, error) {
	if !keep {
		if err := h.reset(); err != nil {
			return sample{}, fmt.Errorf("%s: reset: %w", h.name, err)
		}
	}
	before := h.count()
	var q0 int64
	if h.queries != nil {
		q0 = h.queries()
	}
	ln, err := b.startLauncher(h)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", h.name, err)
	}
	b.sink.take()
	src := b.smtpSource("-A", "-s", strconv.Itoa(l.sessions), "-m", strconv.Itoa(l.msgs), "-l", strconv.Itoa(l.size),
		"-M", "client.bench.example", "-f", "sender@"+spfSender, "-t", "rcpt@"+rcptDomain, ln.addr())
	var out bytes.Buffer
	src.Stdout, src.Stderr = &out, &out
	t0 := time.Now()
	runErr := b.procs.run(src)
	el := time.Since(t0)
	u, stopErr := ln.stop(b)
	time.Sleep(5 * time.Millisecond) // the last log datagrams
	logs := b.sink.take()
	s := sample{spooled: h.count() - before, sent: l.msgs, clientOK: runErr == nil, logLines: logs[h.syslog]}
	if h.queries != nil {
		s.queries = h.queries() - q0
	}
	if h.syslog == "sendmail" {
		s.logLines += logs["sm-mta"]
	}
	if runErr != nil {
		s.errText = strings.TrimSpace(out.String())
		if len(s.errText) > 300 {
			s.errText = s.errText[:300]
		}
	}
	if stopErr != nil && s.errText == "" {
		s.errText = stopErr.Error()
	}
	if s.spooled > 0 {
		s.rate = float64(s.spooled) / el.Seconds()
		s.cpuMs = float64(u.cpu.Microseconds()) / 1000 / float64(s.spooled)
	}
	s.rssKB = u.maxRSS
	return s, nil
}

// greetRun times n greetings, one connection at a time, each after the
// previous handler has exited.
func (b *bench) greetRun(h *handler, n int) ([]float64, error) {
	if err := h.reset(); err != nil {
		return nil, err
	}
	ln, err := b.startLauncher(h)
	if err != nil {
		return nil, err
	}
	var ms []float64
	var firstErr error
	for i := 0; i < n; i++ {
		d, err := greet(ln.addr())
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ms = append(ms, float64(d.Microseconds())/1000)
		waitNoChildren(ln.ts, 10*time.Second)
	}
	ln.stop(b)
	if len(ms) == 0 {
		return nil, fmt.Errorf("%s: no greeting: %v", h.name, firstErr)
	}
	return ms, nil
}

// runGreeting times connect to 220 for each handler, interleaved.
func (b *bench) runGreeting(rep *report) error {
	rep.greet = map[string][]float64{}
	per := max(b.o.greetings/b.o.rounds, 5)
	for r := 0; r < b.o.rounds; r++ {
		for _, h := range b.handlers {
			ms, err := b.greetRun(h, per)
			if err != nil {
				return err
			}
			rep.greet[h.name] = append(rep.greet[h.name], ms...)
		}
	}
	logf("greeting: %s", rep.greetSummary())
	return nil
}

// runIntake runs every load over every handler, interleaved: for each
// load, round after round of A B C D, so drift in the machine (other work,
// page cache, the journal of the file system) hits them all alike.
func (b *bench) runIntake(rep *report) error {
	hs := b.handlers
	// Warm-up: one small run each, not counted (page cache, first exec).
	for _, h := range hs {
		if _, err := b.intakeRun(h, load{"warm-up", 4, 2048, 16}, false); err != nil {
			return err
		}
	}
	loads, err := b.loads()
	if err != nil {
		return err
	}
	for _, l := range loads {
		res := &loadResult{load: l, samples: map[string][]sample{}}
		for r := 0; r < b.o.rounds; r++ {
			for _, h := range hs {
				s, err := b.intakeRun(h, l, false)
				if err != nil {
					return err
				}
				res.samples[h.name] = append(res.samples[h.name], s)
				dnsNote := ""
				if h.queries != nil {
					dnsNote = fmt.Sprintf(" %d DNS queries", s.queries)
				}
				logf("intake %-20s round %d %-14s %7.1f msg/s %6.2f ms CPU/msg %6.1f MB %d/%d spooled%s %s",
					l.name, r+1, h.name, s.rate, s.cpuMs, float64(s.rssKB)/1024, s.spooled, s.sent, dnsNote, s.errText)
				if h.queries != nil && s.spooled > 0 && s.queries == 0 {
					return fmt.Errorf("%s: %d messages spooled and no DNS query answered: the DNSBL and SPF checks did not run", h.name, s.spooled)
				}
			}
		}
		rep.intake = append(rep.intake, res)
	}
	return nil
}
