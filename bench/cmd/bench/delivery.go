package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// drainSample is one timed queue run into smtp-sink.
type drainSample struct {
	rate      float64
	cpuMs     float64
	delivered int // what smtp-sink counted
	left      int // still queued afterwards
	queued    int
	elapsed   time.Duration
	errText   string
}

type sinkProc struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func (b *bench) startSink() (*sinkProc, error) {
	s := &sinkProc{}
	s.cmd = exec.Command(filepath.Join(b.root, "usr/sbin/smtp-sink"), "-u", "nobody", "-c", "-h", "sink.bench.example",
		fmt.Sprintf("127.0.0.1:%d", sinkPort), "256")
	s.cmd.Env = append(baseEnv(), "LD_LIBRARY_PATH="+filepath.Join(b.root, "usr/lib/postfix"))
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := b.procs.start(s.cmd); err != nil {
		return nil, err
	}
	if err := waitListening(sinkPort, 5*time.Second); err != nil {
		s.stop(b)
		return nil, err
	}
	return s, nil
}

var sinkCount = regexp.MustCompile(`mesg=(\d+)`)

// stop ends smtp-sink and returns how many messages it took.
func (s *sinkProc) stop(b *bench) int {
	s.cmd.Process.Signal(syscall.SIGTERM)
	b.procs.wait(s.cmd)
	m := sinkCount.FindAllSubmatch(s.out.Bytes(), -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(string(m[len(m)-1][1]))
	return n
}

func (b *bench) deliveryCount() int {
	if b.o.quick {
		return 100
	}
	return 1000
}

// runDelivery queues the same smtp-source messages in smtp-bs's,
// sendmail's and exim's spools (through their own intake), keeps a copy of
// each spool, then times qrun -once, sendmail -qf and exim -qff draining
// it into smtp-sink, interleaved, each from the same copy every round.
func (b *bench) runDelivery(rep *report) error {
	n := b.deliveryCount()
	hs := []*handler{b.smtpbs, b.sendmail, b.exim}
	for _, h := range hs {
		s, err := b.intakeRun(h, load{"fill", 32, 2048, n}, false)
		if err != nil {
			return err
		}
		if s.spooled != n {
			return fmt.Errorf("%s: filled %d of %d messages (%s)", h.name, s.spooled, n, s.errText)
		}
		snap := h.spool + ".snapshot"
		os.RemoveAll(snap)
		if err := sh("cp", "-a", h.spool, snap); err != nil {
			return err
		}
	}
	rep.delivery = map[string][]drainSample{}
	rep.deliveryN = n
	for r := 0; r < b.o.deliveryRounds; r++ {
		for _, h := range hs {
			s, err := b.drainRun(h)
			if err != nil {
				return err
			}
			rep.delivery[h.name] = append(rep.delivery[h.name], s)
			logf("delivery round %d %-9s %7.1f msg/s %6.2f ms CPU/msg delivered %d, left %d %s",
				r+1, h.name, s.rate, s.cpuMs, s.delivered, s.left, s.errText)
		}
	}
	return nil
}

func (b *bench) drainRun(h *handler) (drainSample, error) {
	if err := os.RemoveAll(h.spool); err != nil {
		return drainSample{}, err
	}
	if err := sh("cp", "-a", h.spool+".snapshot", h.spool); err != nil {
		return drainSample{}, err
	}
	// Drop what the copy left in the page cache's dirty list, so the drain
	// does not pay for our writeback.
	syscall.Sync()
	queued := h.count()
	sink, err := b.startSink()
	if err != nil {
		return drainSample{}, err
	}
	argv := h.drain()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(baseEnv(), h.drainEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	runErr := b.procs.run(cmd)
	el := time.Since(t0)
	delivered := sink.stop(b)
	s := drainSample{delivered: delivered, left: h.count(), queued: queued, elapsed: el}
	if runErr != nil {
		s.errText = fmt.Sprintf("%v: %.200s", runErr, out.String())
	}
	if cmd.ProcessState != nil && delivered > 0 {
		u := usageOf(cmd.ProcessState)
		s.cpuMs = float64(u.cpu.Microseconds()) / 1000 / float64(delivered)
	}
	if delivered > 0 {
		s.rate = float64(delivered) / el.Seconds()
	}
	return s, nil
}
