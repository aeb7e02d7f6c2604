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
	order     []string // the handlers, in the interleaving order
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
	for _, h := range r.order {
		if v, ok := r.greet[h]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f ms", h, median(v)))
		}
	}
	return strings.Join(parts, ", ")
}

func rate(s sample) float64  { return s.rate }
func cpu(s sample) float64   { return s.cpuMs }
func rssMB(s sample) float64 { return float64(s.rssKB) / 1024 }

type target struct {
	what   string
	want   string
	got    string
	met    bool
	absent bool // not measured in this run (a handler it needs did not run)
}

// num prints a ratio or a figure, or "–" where there was nothing to
// divide by or no run.
func num(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

// The handlers issue 22's targets are set for: smtp-bs as installed, and
// with [tls] set (no STARTTLS used).
var targetHandlers = []string{"smtp-bs", "smtp-bs-tls"}

func (r *report) markdown() string {
	var b strings.Builder
	host, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "# smtp-bs benchmark results\n\n")
	var args []string
	for i := 1; i < len(os.Args); i++ {
		switch a := os.Args[i]; a {
		case "-inner":
		case "-floor-libs-list":
			i++
		default:
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
		libs := "(the list was not passed)"
		if r.opts.floorLibs != "" {
			libs = strings.ReplaceAll(r.opts.floorLibs, ",", ", ")
		}
		b.WriteString("floor-libs, the anchor of issue 22's targets, is the floor built with every library smtp-bs's own\n" +
			"packages import (go list -deps ./cmd/smtp-bs, at this run: " + libs + ") but not calling them:\n" +
			"a lower bound on what any program with smtp-bs's dependencies costs each process start. ")
	}
	if slices.Contains(ran, "smtp-bs-tls") {
		b.WriteString("smtp-bs-tls is smtp-bs with `[tls]` set (an RSA-2048 self-signed pair); smtp-source never says STARTTLS. ")
	}
	if slices.Contains(ran, "smtp-bs-checks") {
		b.WriteString("smtp-bs-checks has `[checks.dnsbl]` (one zone) and `[checks.spf]` on, asking a DNS server the benchmark\n" +
			"runs on 127.0.0.1 (DNSBL: not listed; SPF: pass); relay_networks is empty so that both checks run, and the recipient's\n" +
			"domain is accepted as a local domain instead. ")
	}
	if slices.Contains(ran, p10Name) {
		b.WriteString("smtp-bs-p10 is smtp-bs built with go-smtp's DATA reader as before patch 11 (" + patch11 + ", go build -overlay). ")
	}
	for _, a := range r.opts.ab {
		if slices.Contains(ran, a.name) {
			fmt.Fprintf(&b, "%s (-ab) runs %s", a.name, a.bin)
			if a.toml != "" {
				fmt.Fprintf(&b, " with %s appended to the config", a.toml)
			}
			b.WriteString(". ")
		}
	}
	fmt.Fprintf(&b, "Runs are interleaved (%s, then again); figures are medians over the rounds,\n"+
		"ratios are medians of the per-round ratios. CPU is user+system of tcpserver and every handler it reaped (wait4\n"+
		"rusage), per message spooled; RSS is the largest peak of any one process.\n\n", strings.Join(ran, ", "))

	var targets, kept []target
	var noTarget, checksCost []string
	if len(r.greet) > 0 {
		fx, haveFx := r.greet["floor-libs"]
		b.WriteString("## Time from connect to the 220 greeting\n\n| handler | median ms | p90 ms | connects | − floor-libs ms |\n|---|---:|---:|---:|---:|\n")
		for _, h := range r.order {
			v, ok := r.greet[h]
			if !ok {
				continue
			}
			d := "–"
			if haveFx {
				d = fmt.Sprintf("%+.2f", median(v)-median(fx))
			}
			fmt.Fprintf(&b, "| %s | %.2f | %.2f | %d | %s |\n", h, median(v), pct(v, 0.9), len(v), d)
		}
		b.WriteString("\n")
		for _, h := range targetHandlers {
			v, ok := r.greet[h]
			t := target{what: h + " median time to greeting", want: "≤ floor-libs + 0.3 ms", absent: !ok || !haveFx}
			if !t.absent {
				g, lim := median(v), median(fx)+0.3
				t.got, t.met = fmt.Sprintf("%.2f ms (limit %.2f)", g, lim), g <= lim
			}
			targets = append(targets, t)
		}
	}
	if len(r.intake) > 0 {
		b.WriteString("## Intake\n\n")
		b.WriteString("| load | handler | msg/s | rate vs floor-libs | rate vs sendmail | CPU ms/msg | CPU vs floor-libs | CPU vs floor | peak RSS MB | spooled/sent | log lines/msg |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		maxRSS := map[string]float64{}
		for _, lr := range r.intake {
			fl, fx, sm := lr.samples["floor"], lr.samples["floor-libs"], lr.samples["sendmail"]
			for _, h := range r.order {
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
				fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %.2f | %s | %s | %.1f | %d/%d | %.1f |\n",
					lr.load.name, h, median(field(ss, rate)),
					num(ratio(field(ss, rate), field(fx, rate))), num(ratio(field(ss, rate), field(sm, rate))),
					median(field(ss, cpu)), num(ratio(field(ss, cpu), field(fx, cpu))), num(ratio(field(ss, cpu), field(fl, cpu))),
					median(field(ss, rssMB)), spooled, sent, logsPer)
				maxRSS[h] = max(maxRSS[h], median(field(ss, rssMB)))
			}
			for _, h := range targetHandlers {
				ss := lr.samples[h]
				absent := len(ss) == 0 || len(fx) == 0
				vc, vr := ratio(field(ss, cpu), field(fx, cpu)), ratio(field(ss, rate), field(fx, rate))
				targets = append(targets,
					target{what: h + " CPU per message vs floor-libs, " + lr.load.name, want: "≤ 1.15", got: num(vc), met: vc <= 1.15, absent: absent},
					target{what: h + " rate vs floor-libs, " + lr.load.name, want: "≥ 0.85", got: num(vr), met: vr >= 0.85, absent: absent})
			}
			if sb := lr.samples["smtp-bs"]; len(sb) > 0 && len(sm) > 0 {
				noTarget = append(noTarget, fmt.Sprintf("| smtp-bs vs sendmail -bs, %s | rate %s, CPU per message %s |", lr.load.name,
					num(ratio(field(sb, rate), field(sm, rate))), num(ratio(field(sb, cpu), field(sm, cpu)))))
			}
			if sb, ck := lr.samples["smtp-bs"], lr.samples["smtp-bs-checks"]; len(sb) > 0 && len(ck) > 0 {
				checksCost = append(checksCost, fmt.Sprintf("| DNSBL + SPF checks' added CPU, %s | %+.2f ms/msg (%sx) |", lr.load.name,
					median(field(ck, cpu))-median(field(sb, cpu)), num(ratio(field(ck, cpu), field(sb, cpu)))))
			}
		}
		noTarget = append(noTarget, checksCost...)
		for _, h := range targetHandlers {
			v, ok := maxRSS[h]
			targets = append(targets, target{what: h + " peak RSS (the largest median over the loads)", want: "≤ 8 MB",
				got: fmt.Sprintf("%.1f MB", v), met: v <= 8, absent: !ok})
		}
		if split := gapSplit(r.intake); split != "" {
			b.WriteString("\n" + split)
		}
		if t := patchTable(r.intake); t != "" {
			b.WriteString("\n" + t)
		}
		if t := checksTable(r.intake); t != "" {
			b.WriteString("\n" + t)
		}
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
		kept = append(kept,
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
		kept = append(kept,
			target{what: fmt.Sprintf("qrun -once over %d not-due messages", s.msgs), want: "< 1 s", got: fmt.Sprintf("%.0f ms", p), met: p < 1000},
			target{what: "message files opened by that pass", want: "0", got: fmt.Sprint(len(s.spoolOpens)), met: len(s.spoolOpens) == 0},
			target{what: "intake with the full spool vs empty", want: "≥ 0.9", got: fmt.Sprintf("%.2f", fr), met: fr >= 0.9})
		if len(s.spoolOpens) > 0 {
			fmt.Fprintf(&b, "First files opened: %s\n\n", strings.Join(s.spoolOpens[:min(5, len(s.spoolOpens))], ", "))
		}
	}
	if len(targets) > 0 {
		b.WriteString("## Targets (issue 22)\n\nRatios to floor-libs from this one run; smtp-bs-tls has `[tls]` set and no STARTTLS used.\n\n")
		writeTargets(&b, targets)
	}
	if len(noTarget) > 0 {
		b.WriteString("## Reported, no target\n\n| measure | result |\n|---|---|\n" + strings.Join(noTarget, "\n") + "\n\n")
	}
	if len(kept) > 0 {
		b.WriteString("## Targets kept from issue 9 (delivery, scale)\n\n")
		writeTargets(&b, kept)
	}
	return b.String()
}

func writeTargets(b *strings.Builder, ts []target) {
	b.WriteString("| target | wanted | measured | |\n|---|---|---|---|\n")
	for _, t := range ts {
		mark, got := "met", t.got
		switch {
		case t.absent:
			mark, got = "not measured", "–"
		case !t.met:
			mark = "**missed**"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", t.what, t.want, got, mark)
	}
	b.WriteString("\n")
}

// patchTable shows go-smtp's patch 11 alone: smtp-bs against the same
// source built with data.go from before the patch, per load.
func patchTable(intake []*loadResult) string {
	var b strings.Builder
	for _, lr := range intake {
		p, sb := lr.samples[p10Name], lr.samples["smtp-bs"]
		if len(p) == 0 || len(sb) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("go-smtp patch 11 alone (the DATA reader copies runs up to the next CR, " + patch11 + "): smtp-bs against\n" +
				"smtp-bs-p10, the same source with data.go from before the patch:\n\n" +
				"| load | smtp-bs-p10 CPU ms/msg | smtp-bs CPU ms/msg | CPU smtp-bs / smtp-bs-p10 | rate smtp-bs / smtp-bs-p10 |\n" +
				"|---|---:|---:|---:|---:|\n")
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %s | %s |\n", lr.load.name, median(field(p, cpu)), median(field(sb, cpu)),
			num(ratio(field(sb, cpu), field(p, cpu))), num(ratio(field(sb, rate), field(p, rate))))
	}
	return b.String()
}

// checksTable shows what the DNSBL and SPF checks add per message, and
// that they ran: the DNS queries the bench's server answered per message.
func checksTable(intake []*loadResult) string {
	var b strings.Builder
	for _, lr := range intake {
		ck, sb := lr.samples["smtp-bs-checks"], lr.samples["smtp-bs"]
		if len(ck) == 0 || len(sb) == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("DNSBL + SPF checks (smtp-bs-checks against smtp-bs; the DNS server on 127.0.0.1 answers at once, so\n" +
				"this is the checks' own CPU, not a resolver's latency):\n\n" +
				"| load | smtp-bs CPU ms/msg | smtp-bs-checks CPU ms/msg | added ms/msg | CPU ratio | rate ratio | DNS queries/msg |\n" +
				"|---|---:|---:|---:|---:|---:|---:|\n")
		}
		var q int64
		n := 0
		for _, s := range ck {
			q += s.queries
			n += s.spooled
		}
		qPer := 0.0
		if n > 0 {
			qPer = float64(q) / float64(n)
		}
		fmt.Fprintf(&b, "| %s | %.2f | %.2f | %+.2f | %s | %s | %.2f |\n", lr.load.name, median(field(sb, cpu)), median(field(ck, cpu)),
			median(field(ck, cpu))-median(field(sb, cpu)), num(ratio(field(ck, cpu), field(sb, cpu))),
			num(ratio(field(ck, rate), field(sb, rate))), qPer)
	}
	return b.String()
}

// gapSplit divides smtp-bs's CPU per message over the floor's into the part
// that linking the libraries costs (floor-libs over floor) and the rest
// (smtp-bs over floor-libs), per load, when floor-libs ran; when
// floor-code ran too, the rest again into a larger program (floor-code
// over floor-libs) and smtp-bs's work (smtp-bs over floor-code). As
// ratios, which multiply (roughly: each is a median of its own), and as
// milliseconds, which add up.
func gapSplit(intake []*loadResult) string {
	var b strings.Builder
	for _, lr := range intake {
		fl, fx, fc, sb := lr.samples["floor"], lr.samples["floor-libs"], lr.samples["floor-code"], lr.samples["smtp-bs"]
		if len(fl) == 0 || len(fx) == 0 || len(sb) == 0 {
			continue
		}
		code := len(fc) > 0
		if b.Len() == 0 {
			b.WriteString("Where smtp-bs's CPU per message over the floor's goes: floor-libs over the floor is what linking the\n" +
				"libraries costs at least; smtp-bs over floor-libs is the rest")
			if code {
				b.WriteString(", split by floor-code (floor-libs that also links, never calls, what\n" +
					"cmd/smtp-bs calls) into a larger program (floor-code over floor-libs) and smtp-bs's work at run time\n" +
					"(smtp-bs over floor-code):\n\n" +
					"| load | smtp-bs vs floor | floor-libs vs floor | smtp-bs vs floor-libs | floor-code vs floor-libs | smtp-bs vs floor-code | floor-libs − floor, ms | floor-code − floor-libs, ms | smtp-bs − floor-code, ms |\n" +
					"|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			} else {
				b.WriteString(" (its own work, go-smtp's at run time, a larger program):\n\n" +
					"| load | smtp-bs vs floor | floor-libs vs floor | smtp-bs vs floor-libs | floor-libs − floor, ms | smtp-bs − floor-libs, ms |\n" +
					"|---|---:|---:|---:|---:|---:|\n")
			}
		}
		if code {
			fmt.Fprintf(&b, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", lr.load.name,
				ratio(field(sb, cpu), field(fl, cpu)), ratio(field(fx, cpu), field(fl, cpu)), ratio(field(sb, cpu), field(fx, cpu)),
				ratio(field(fc, cpu), field(fx, cpu)), ratio(field(sb, cpu), field(fc, cpu)),
				median(field(fx, cpu))-median(field(fl, cpu)), median(field(fc, cpu))-median(field(fx, cpu)), median(field(sb, cpu))-median(field(fc, cpu)))
			continue
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
	for _, h := range r.order {
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
