package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"smtp-bs/pkg/spool"
)

type scaleResult struct {
	msgs        int
	genSeconds  float64
	passMs      []float64 // qrun -once over the full, not-due spool
	openats     int       // every openat of the traced pass
	spoolOpens  []string  // openat of a file below queue/, data/, state/ or hold/
	straceTotal string
	emptyRate   []float64
	fullRate    []float64
}

// genSpool writes n not-yet-due messages with pkg/spool itself, its
// fsyncs skipped (a crash here loses nothing of value) and its clock set a
// day ahead, which is what Enqueue stamps as the next try.
func genSpool(dir string, n int) error {
	future := time.Now().Add(24 * time.Hour)
	sp, err := spool.Create(dir, spool.Ops{Fsync: func(*os.File) error { return nil }, Now: func() time.Time { return future }})
	if err != nil {
		return err
	}
	body := []byte("Received: from client.bench.example ([127.0.0.1]) by " + benchHost + "\r\nFrom: <sender@client.bench.example>\r\nTo: <rcpt@remote.example>\r\nSubject: scale\r\n\r\n")
	line := bytes.Repeat([]byte("X"), 78)
	for len(body) < 2048 {
		body = append(body, line...)
		body = append(body, '\r', '\n')
	}
	base := time.Now().UnixMicro()
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				env := &spool.Envelope{
					ID:       fmt.Sprintf("%013x%06x", base+int64(i), 0xbe0000),
					Received: time.Now(), From: "sender@client.bench.example", Rcpts: []string{"rcpt@remote.example"},
					Peer: "127.0.0.1", Helo: "client.bench.example", Protocol: "ESMTP", Body: "7BIT",
				}
				if err := sp.Enqueue(env, body); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// runScale: qrun -once over a spool of scaleMsgs messages that are not
// due (timed, then traced to show it opens none of them), and smtp-bs's
// intake into that spool against an empty one, interleaved.
func (b *bench) runScale(rep *report) error {
	res := &scaleResult{msgs: b.o.scaleMsgs}
	rep.scale = res
	dir := filepath.Join(b.run, "scale")
	spoolDir := filepath.Join(dir, "spool")
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o755)
	t0 := time.Now()
	if err := genSpool(spoolDir, res.msgs); err != nil {
		return fmt.Errorf("generate spool: %w", err)
	}
	if err := chownTree(spoolDir, b.mailUID, b.mailGID); err != nil {
		return err
	}
	syscall.Sync()
	res.genSeconds = time.Since(t0).Seconds()
	logf("scale: %d messages generated in %.1fs", res.msgs, res.genSeconds)

	cfg := filepath.Join(dir, "smtp-bs.toml")
	toml := fmt.Sprintf("hostname = %q\n\n[spool]\ndir = %q\n\n[delivery]\nsmarthost = \"127.0.0.1:%d\"\n", benchHost, spoolDir, sinkPort)
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		return err
	}
	qrun := []string{b.qrunBin(), "-config", cfg, "-once"}
	for i := 0; i < 3; i++ {
		cmd := exec.Command(qrun[0], qrun[1:]...)
		cmd.Env = baseEnv()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t := time.Now()
		if err := b.procs.run(cmd); err != nil {
			return fmt.Errorf("qrun -once: %v: %s", err, out.String())
		}
		res.passMs = append(res.passMs, float64(time.Since(t).Microseconds())/1000)
		logf("scale: qrun -once over %d not-due messages: %.0f ms", res.msgs, res.passMs[i])
	}
	if err := b.traceOpens(qrun, spoolDir, res); err != nil {
		return err
	}
	logf("scale: traced pass: %d openat calls, %d of them below queue/, data/, state/ or hold/", res.openats, len(res.spoolOpens))

	// Intake with the full spool against an empty one.
	full := *b.smtpbs
	full.argv = []string{b.smtpbsBin(), "-config", cfg}
	full.spool = spoolDir
	full.count = func() int { return countDir(filepath.Join(spoolDir, "queue"), nil) }
	l := b.allLoads()[1] // 8 sessions, 2 KB
	for r := 0; r < b.o.rounds; r++ {
		e, err := b.intakeRun(b.smtpbs, l, false)
		if err != nil {
			return err
		}
		f, err := b.intakeRun(&full, l, true)
		if err != nil {
			return err
		}
		res.emptyRate = append(res.emptyRate, e.rate)
		res.fullRate = append(res.fullRate, f.rate)
		logf("scale: intake round %d: empty spool %.1f msg/s, %d queued %.1f msg/s", r+1, e.rate, res.msgs, f.rate)
	}
	return nil
}

var openatRe = regexp.MustCompile(`openat\([^,]+, "([^"]+)"`)

// traceOpens runs one pass under strace and lists every file it opened
// below the spool's message directories. Opening the directories
// themselves (to list them) is what a scan must do.
func (b *bench) traceOpens(qrun []string, spoolDir string, res *scaleResult) error {
	tf := filepath.Join(b.run, "scale", "strace.txt")
	cf := filepath.Join(b.run, "scale", "strace-c.txt")
	args := append([]string{"-f", "-qq", "-e", "trace=open,openat,openat2", "-o", tf}, qrun...)
	if out, err := exec.Command("strace", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("strace qrun: %v: %s", err, out)
	}
	f, err := os.Open(tf)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	prefix := spoolDir + "/"
	for sc.Scan() {
		m := openatRe.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		res.openats++
		rel, ok := strings.CutPrefix(m[1], prefix)
		if !ok {
			continue
		}
		if d, name, ok := strings.Cut(rel, "/"); ok && name != "" && (d == "queue" || d == "data" || d == "state" || d == "hold") {
			res.spoolOpens = append(res.spoolOpens, rel)
		}
	}
	sort.Strings(res.spoolOpens)
	// The syscall summary of the same pass, for the record.
	args = append([]string{"-f", "-c", "-o", cf}, qrun...)
	if out, err := exec.Command("strace", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("strace -c qrun: %v: %s", err, out)
	}
	if c, err := os.ReadFile(cf); err == nil {
		res.straceTotal = string(c)
	}
	return nil
}
