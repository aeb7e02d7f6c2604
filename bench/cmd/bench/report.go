package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"
)

type loadResult struct {
	load    load
	samples map[string][]sample // per handler, one per round
}

type report struct {
	opts      *options
	started   time.Time
	elapsed   time.Duration
	load0     string
	load1     string
	greet     map[string][]float64
	intake    []*loadResult
	delivery  map[string][]drainSample
	deliveryN int
	scale     *scaleResult
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func field(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// ratio is the median over rounds of a[i]/b[i]: each ratio compares two
// runs of the same round, minutes apart at most.
func ratio(a, b []float64) float64 {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		}
	}
	return median(r)
}

func (r *report) greetSummary() string {
	var parts []string
	for _, h := range handlerOrder {
		if v, ok := r.greet[h]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f ms", h, median(v)))
		}
	}
	return strings.Join(parts, ", ")
}

var handlerOrder = []string{"smtp-bs", "floor", "floor-libs", "sendmail", "exim"}

func rate(s sample) float64  { return s.rate }
func cpu(s sample) float64   { return s.cpuMs }
func rssMB(s sample) float64 { return float64(s.rssKB) / 1024 }

type target struct {
	what   string
	want   string
	got    string
	met    bool
	absent bool
}

func (r *report) markdown() string {
	var b strings.Builder
	host, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "# smtp-bs benchmark results\n\n")
	var args []string
	for _, a := range os.Args[1:] {
		if a != "-inner" {
			args = append(args, a)
		}
	}
	cmd := strings.TrimSpace("go run ./bench/cmd/bench " + strings.Join(args, " "))
	fmt.Fprintf(&b, "Made by `make bench` (`%s`: %d intake rounds, %d delivery rounds, %d messages in the scale spool) on %s,\n",
		cmd, r.opts.rounds, r.opts.deliveryRounds, r.opts.scaleMsgs, r.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "%d CPUs, Linux %s, %s; %s in all. Load average before: %s, after: %s.\n\n",
		runtime.NumCPU(), strings.TrimSpace(string(host)), runtime.Version(), r.elapsed.Round(time.Second), r.load0, r.load1)
	ran := r.handlersRun()
	b.WriteString("Every handler is started by tcpserver (ucspi-tcp), one process per connection, on 127.0.0.1, and driven\n" +
		"by Postfix's smtp-source (one message per connection); what reached each spool is counted. smtp-bs and the floor run as\n" +
		"`mail` (tcpserver -u/-g, as installed), sendmail and exim as root (as from inetd). Handlers log to a syslog socket the\n" +
		"benchmark reads. ")
	if slices.Contains(ran, "floor-libs") {
		b.WriteString("floor-libs is the floor built with every library smtp-bs links (go-smtp, and with it crypto/tls;\n" +
			"BurntSushi/toml; go-systemd; x/sys; x/crypto; go-sasl; go-milter; x/term) but not calling them: a lower bound on\n" +
			"what linking them costs each process start. ")
	}
	fmt.Fprintf(&b, "Runs are interleaved (%s, then again); figures are medians over the rounds,\n"+
		"ratios are medians of the per-round ratios. CPU is user+system of tcpserver and every handler it reaped (wait4\n"+
		"rusage), per message spooled; RSS is the largest peak of any one process.\n\n", strings.Join(ran, ", "))

	var targets []target
	if len(r.greet) > 0 {
		b.WriteString("## Time from connect to the 220 greeting\n\n| handler | median ms | p90 ms | connects |\n|---|---:|---:|---:|\n")
		for _, h := range handlerOrder {
			v, ok := r.greet[h]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "| %s | %.2f | %.2f | %d |\n", h, median(v), pct(v, 0.9), len(v))
		}
		b.WriteString("\n")
		g := median(r.greet["smtp-bs"])
		targets = append(targets, target{what: "smtp-bs median time to greeting", want: "≤ 3 ms", got: fmt.Sprintf("%.2f ms", g), met: g <= 3})
	}
	if len(r.intake) > 0 {
		b.WriteString("## Intake\n\n")
		b.WriteString("| load | handler | msg/s | vs floor | vs sendmail | CPU ms/msg | CPU vs floor | peak RSS MB | spooled/sent | log lines/msg |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		maxRSS := 0.0
		for _, lr := range r.intake {
			fl, sm := lr.samples["floor"], lr.samples["sendmail"]
			for _, h := range handlerOrder {
				ss := lr.samples[h]
				if len(ss) == 0 {
					continue
				}
				spooled, sent, logs := 0, 0, 0
				for _, s := range ss {
					spooled += s.spooled
					sent += s.sent
					logs += s.logLines
				}
				logsPer := 0.0
				if spooled > 0 {
					logsPer = float64(logs) / float64(spooled)
				}
				fmt.Fprintf(&b, "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %d/%d | %.1f |\n",
					lr.load.name, h, median(field(ss, rate)),
					ratio(field(ss, rate), field(fl, rate)), ratio(field(ss, rate), field(sm, rate)),
					median(field(ss, cpu)), ratio(field(ss, cpu), field(fl, cpu)),
					median(field(ss, rssMB)), spooled, sent, logsPer)
				if h == "smtp-bs" {
					maxRSS = max(maxRSS, median(field(ss, rssMB)))
				}
			}
			ss := lr.samples["smtp-bs"]
			vf, vs, vc := ratio(field(ss, rate), field(fl, rate)), ratio(field(ss, rate), field(sm, rate)), ratio(field(ss, cpu), field(fl, cpu))
			targets = append(targets,
				target{what: "intake rate vs floor, " + lr.load.name, want: "≥ 0.8", got: fmt.Sprintf("%.2f", vf), met: vf >= 0.8},
				target{what: "intake rate vs sendmail, " + lr.load.name, want: "≥ 2.5", got: fmt.Sprintf("%.2f", vs), met: vs >= 2.5},
				target{what: "CPU per message vs floor, " + lr.load.name, want: "≤ 1.3", got: fmt.Sprintf("%.2f", vc), met: vc <= 1.3})
		}
		if split := gapSplit(r.intake); split != "" {
			b.WriteString("\n" + split)
		}
		targets = append(targets, target{what: "smtp-bs peak RSS", want: "≤ 8 MB", got: fmt.Sprintf("%.1f MB", maxRSS), met: maxRSS <= 8})
		b.WriteString("\n")
	}
	if len(r.delivery) > 0 {
		fmt.Fprintf(&b, "## Delivery: %d queued 2 KB messages into smtp-sink on 127.0.0.1\n\n", r.deliveryN)
		b.WriteString("| drainer | msg/s | vs sendmail -qf | vs exim -qff | CPU ms/msg | seconds | delivered | left queued |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		names := map[string]string{"smtp-bs": "qrun -once", "sendmail": "sendmail -qf", "exim": "exim -qff"}
		dr := func(h string) []float64 {
			var v []float64
			for _, s := range r.delivery[h] {
				v = append(v, s.rate)
			}
			return v
		}
		for _, h := range []string{"smtp-bs", "sendmail", "exim"} {
			ss := r.delivery[h]
			var cpuv, secs []float64
			del, left := 0, 0
			for _, s := range ss {
				cpuv = append(cpuv, s.cpuMs)
				secs = append(secs, s.elapsed.Seconds())
				del += s.delivered
				left += s.left
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %d/%d | %d |\n", names[h], median(dr(h)),
				ratio(dr(h), dr("sendmail")), ratio(dr(h), dr("exim")), median(cpuv), median(secs), del, len(ss)*r.deliveryN, left)
		}
		b.WriteString("\n")
		vs, ve := ratio(dr("smtp-bs"), dr("sendmail")), ratio(dr("smtp-bs"), dr("exim"))
		targets = append(targets,
			target{what: "qrun delivery rate vs sendmail -qf", want: "≥ 1", got: fmt.Sprintf("%.2f", vs), met: vs >= 1},
			target{what: "qrun delivery rate vs exim -qff", want: "≥ 5", got: fmt.Sprintf("%.2f", ve), met: ve >= 5})
	}
	if s := r.scale; s != nil {
		fmt.Fprintf(&b, "## Scale: %d queued messages, none due\n\n", s.msgs)
		fmt.Fprintf(&b, "| measure | result |\n|---|---|\n")
		fmt.Fprintf(&b, "| qrun -once over the spool (median of %d) | %.0f ms |\n", len(s.passMs), median(s.passMs))
		fmt.Fprintf(&b, "| files opened below queue/, data/, state/, hold/ (strace -f -e trace=open,openat,openat2) | %d (of %d openat calls in all) |\n", len(s.spoolOpens), s.openats)
		fmt.Fprintf(&b, "| smtp-bs intake, 8 sessions of 2 KB, empty spool | %.0f msg/s |\n", median(s.emptyRate))
		fmt.Fprintf(&b, "| smtp-bs intake, 8 sessions of 2 KB, %d queued | %.0f msg/s (%.2fx) |\n", s.msgs, median(s.fullRate), ratio(s.fullRate, s.emptyRate))
		fmt.Fprintf(&b, "| generating the spool with pkg/spool (no fsync) | %.1f s |\n\n", s.genSeconds)
		p, fr := median(s.passMs), ratio(s.fullRate, s.emptyRate)
		targets = append(targets,
			target{what: fmt.Sprintf("qrun -once over %d not-due messages", s.msgs), want: "< 1 s", got: fmt.Sprintf("%.0f ms", p), met: p < 1000},
			target{what: "message files opened by that pass", want: "0", got: fmt.Sprint(len(s.spoolOpens)), met: len(s.spoolOpens) == 0},
			target{what: "intake with the full spool vs empty", want: "≥ 0.9", got: fmt.Sprintf("%.2f", fr), met: fr >= 0.9})
		if len(s.spoolOpens) > 0 {
			fmt.Fprintf(&b, "First files opened: %s\n\n", strings.Join(s.spoolOpens[:min(5, len(s.spoolOpens))], ", "))
		}
	}
	if len(targets) > 0 {
		b.WriteString("## Targets (issue 9)\n\n| target | wanted | measured | |\n|---|---|---|---|\n")
		for _, t := range targets {
			mark := "met"
			if !t.met {
				mark = "**missed**"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.what, t.want, t.got, mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// gapSplit divides smtp-bs's CPU per message over the floor's into the part
// that linking the libraries costs (floor-libs over floor) and the rest
// (smtp-bs over floor-libs), per load, when floor-libs ran: as ratios, which
// multiply (roughly: each is a median of its own), and as milliseconds,
// which add up.
func gapSplit(intake []*loadResult) string {
	var b strings.Builder
	for _, lr := range intake {
		fl, fx, sb := lr.samples["floor"], lr.samples["floor-libs"], lr.samples["smtp-bs"]
		if len(fl) == 0 || len(fx) == 0 || len(sb) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("Where smtp-bs's CPU per message over the floor's goes: floor-libs over the floor is what linking the\n" +
				"libraries costs at least; smtp-bs over floor-libs is the rest (its own work, go-smtp's at run time, a larger program):\n\n" +
				"| load | smtp-bs vs floor | floor-libs vs floor | smtp-bs vs floor-libs | floor-libs − floor, ms | smtp-bs − floor-libs, ms |\n" +
				"|---|---:|---:|---:|---:|---:|\n")
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", lr.load.name,
			ratio(field(sb, cpu), field(fl, cpu)), ratio(field(fx, cpu), field(fl, cpu)), ratio(field(sb, cpu), field(fx, cpu)),
			median(field(fx, cpu))-median(field(fl, cpu)), median(field(sb, cpu))-median(field(fx, cpu)))
	}
	return b.String()
}

// handlersRun lists the handlers with any result, in the interleaving order.
func (r *report) handlersRun() []string {
	var ran []string
	for _, h := range handlerOrder {
		_, ok := r.greet[h]
		for _, lr := range r.intake {
			ok = ok || len(lr.samples[h]) > 0
		}
		if ok {
			ran = append(ran, h)
		}
	}
	return ran
}
