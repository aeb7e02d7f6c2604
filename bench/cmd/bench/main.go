// Command bench measures smtp-bs against the floor (bench/cmd/floor: a
// process start plus one durable write), sendmail -bs -odq and exim4 -bs,
// all launched the same way: tcpserver, one process per connection, on
// 127.0.0.1. Postfix's smtp-source drives them; what reached each spool is
// counted. Then qrun -once against sendmail -qf and exim -qff draining the
// same 1,000 messages into smtp-sink, and qrun over 100,000 queued
// messages that are not due.
//
// Run it as root through "make bench" (bench/run.sh): sendmail and exim
// are unpacked from Debian's packages into bench/.cache/root, never
// installed. The measurements run inside private mount, network and UTS
// namespaces: only the loopback interface exists, delayed ACKs are off
// on it (quickack, as sendmail's queue runner needs), the host name is
// fully qualified, /etc/hosts, /etc/passwd (plus exim's user) and /dev
// (with a syslog socket the benchmark reads) are private copies, and every
// MTA's queue lives under bench/.cache/run. Nothing outlives the run:
// every process started here is stopped by its PID.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"smtp-bs/bench/internal/linked"
)

// defaultHandlers are the intake handlers in their interleaving order
// (-ab handlers come right after smtp-bs).
var defaultHandlers = []string{"smtp-bs", "smtp-bs-tls", "smtp-bs-checks", p10Name, "floor", "floor-libs", "floor-code", "sendmail", "exim"}

type options struct {
	repo           string
	cache          string
	out            string
	rounds         int
	deliveryRounds int
	scaleMsgs      int
	greetings      int
	only           string
	quickack       bool
	quick          bool
	inner          bool
	keep           bool
	smtpbsBin      string
	qrunBin        string
	rev            string
	handlers       string
	smtpbsEnv      string
	ab             abFlag
	loads          string
	floorLibs      string // inner: what floor-libs links, comma-separated (from outer's go list)
}

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", ".", "repository root")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "results file (markdown); \"\" prints only")
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds of each intake load")
	flag.IntVar(&o.deliveryRounds, "delivery-rounds", 3, "interleaved rounds of the delivery benchmark")
	flag.IntVar(&o.scaleMsgs, "scale-msgs", 100000, "messages in the scale benchmark's spool")
	flag.IntVar(&o.greetings, "greetings", 150, "connects per handler for the time to greeting (its spread within one run is about 1.5 ms on a loaded 2-core VM: 40 were too few)")
	flag.StringVar(&o.only, "only", "greeting,intake,delivery,scale", "comma-separated parts to run")
	flag.StringVar(&o.handlers, "handlers", strings.Join(defaultHandlers, ","), "intake handlers to run (profiling: fewer)")
	flag.StringVar(&o.smtpbsEnv, "smtp-bs-env", "", "extra environment for every smtp-bs handler, comma-separated (profiling: GODEBUG=..., GOMAXPROCS=1)")
	flag.Var(&o.ab, "ab", "NAME=BINARY[,TOMLFILE]: an extra handler NAME running BINARY with smtp-bs's config plus TOMLFILE appended, right after smtp-bs (repeatable)")
	flag.StringVar(&o.loads, "loads", "", "intake loads to run, 1-based indexes, comma-separated (e.g. 2,4); empty: all")
	flag.StringVar(&o.floorLibs, "floor-libs-list", "", "internal: the libraries floor-libs links")
	flag.StringVar(&o.rev, "rev", "", "build smtp-bs and qrun from this git revision (e.g. HEAD) instead of the work tree")
	flag.StringVar(&o.smtpbsBin, "smtp-bs", "", "measure this smtp-bs binary (also as smtp-bs-tls and smtp-bs-checks) instead of building ./cmd/smtp-bs")
	flag.StringVar(&o.qrunBin, "qrun", "", "measure this qrun binary instead of building ./cmd/qrun")
	flag.BoolVar(&o.quickack, "quickack", true, "turn delayed ACKs off on loopback (as sendmail's queue runner needs)")
	flag.BoolVar(&o.quick, "quick", false, "a smoke run: few messages, one round")
	flag.BoolVar(&o.keep, "keep", false, "keep bench/.cache/run afterwards")
	flag.BoolVar(&o.inner, "inner", false, "internal: already inside the namespaces")
	flag.Parse()
	o.repo, _ = filepath.Abs(o.repo)
	for _, p := range []*string{&o.smtpbsBin, &o.qrunBin} {
		if *p != "" {
			*p, _ = filepath.Abs(*p)
		}
	}
	o.cache = filepath.Join(o.repo, "bench", ".cache")
	if o.quick {
		o.rounds, o.deliveryRounds, o.greetings = 1, 1, 10
		if o.scaleMsgs > 10000 {
			o.scaleMsgs = 10000
		}
	}
	if o.inner {
		os.Exit(inner(&o))
	}
	os.Exit(outer(&o))
}

// outer checks the prerequisites, builds the binaries, then runs itself
// again inside fresh namespaces.
func outer(o *options) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: must run as root (namespaces, tcpserver -u, sendmail and exim as root)")
		return 77
	}
	for _, f := range []string{"usr/sbin/smtp-source", "usr/libexec/sendmail/sendmail", "usr/sbin/exim4", "usr/bin/m4"} {
		if _, err := os.Stat(filepath.Join(o.cache, "root", f)); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s is missing: run bench/fetch.sh (make bench does)\n", f)
			return 69
		}
	}
	for _, t := range []string{"tcpserver", "ip", "strace"} {
		if _, err := exec.LookPath(t); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s is not installed: run bench/fetch.sh\n", t)
			return 69
		}
	}
	bin := filepath.Join(o.cache, "bin")
	os.MkdirAll(bin, 0o755)
	src := o.repo
	if o.rev != "" {
		// A clean tree of one revision: what others have half-edited in
		// the work tree does not get measured (or break the build).
		src = filepath.Join(o.cache, "src")
		os.RemoveAll(src)
		os.MkdirAll(src, 0o755)
		c := exec.Command("sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", o.repo, o.rev, src)
		if out, err := c.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: git archive %s: %v\n%s", o.rev, err, out)
			return 70
		}
	}
	builds := [][]string{{"floor", "./bench/cmd/floor"}, {"floor-libs", "./bench/cmd/floor", "-tags=floorlibs"},
		{"floor-code", "./bench/cmd/floor", "-tags=floorlibs,floorcode"}}
	if o.smtpbsBin == "" {
		builds = append(builds, []string{"smtp-bs", "./cmd/smtp-bs"})
	}
	if o.qrunBin == "" {
		builds = append(builds, []string{"qrun", "./cmd/qrun"})
	}
	if strings.Contains(","+o.handlers+",", ","+p10Name+",") && (strings.Contains(o.only, "intake") || strings.Contains(o.only, "greeting")) {
		if note, err := buildP10(o.repo, src, bin); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 70
		} else if note != "" {
			fmt.Fprintln(os.Stderr, "bench: note:", note)
		}
	} else {
		os.Remove(p10Bin(bin))
	}
	libs, err := linked.Libraries(o.repo, "./cmd/smtp-bs")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 70
	}
	for _, b := range builds {
		dir := src
		if strings.HasPrefix(b[0], "floor") {
			dir = o.repo
		}
		c := exec.Command("go", append([]string{"build", "-o", filepath.Join(bin, b[0])}, b[2:]...)...)
		c.Args = append(c.Args, b[1])
		c.Dir = dir
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := c.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: go build %s: %v\n%s", b[1], err, out)
			return 70
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 70
	}
	args := append([]string{"-inner", "-floor-libs-list", strings.Join(libs, ",")}, os.Args[1:]...)
	cmd := exec.Command(self, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 70
	}
	return 0
}

func inner(o *options) int {
	started := time.Now()
	b, err := newBench(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 70
	}
	defer b.cleanup()
	parts := map[string]bool{}
	for _, p := range strings.Split(o.only, ",") {
		parts[strings.TrimSpace(p)] = true
	}
	rep := &report{opts: o, started: started, load0: loadavg()}
	for _, h := range b.handlers {
		rep.order = append(rep.order, h.name)
	}
	if parts["greeting"] {
		if err := b.runGreeting(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench: greeting:", err)
			return 70
		}
	}
	if parts["intake"] {
		if err := b.runIntake(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench: intake:", err)
			return 70
		}
	}
	if parts["delivery"] {
		if err := b.runDelivery(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench: delivery:", err)
			return 70
		}
	}
	if parts["scale"] {
		if err := b.runScale(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench: scale:", err)
			return 70
		}
	}
	rep.elapsed = time.Since(started)
	rep.load1 = loadavg()
	md := rep.markdown()
	fmt.Println(md)
	if o.out != "" {
		p := o.out
		if !filepath.IsAbs(p) {
			p = filepath.Join(o.repo, p)
		}
		if err := os.WriteFile(p, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 73
		}
		fmt.Fprintln(os.Stderr, "bench: wrote", p)
	}
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}
