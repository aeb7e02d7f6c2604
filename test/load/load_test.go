// Package load opens 200 SMTP sessions at once against smtp-bs behind a
// real launcher with a small instance limit, on 127.0.0.1: xinetd
// (instances = 10), which refuses what is over the limit, and tcpserver
// (-c 10), which makes it wait. Every message that got 250 is spooled
// exactly once, no more than the limit of smtp-bs processes ever run at
// once, and the machine stays responsive: a NOOP dialogue with another
// smtp-bs completes quickly throughout.
package load

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/spool"
)

const (
	sessions = 200
	limit    = 10
)

type outcome int

const (
	queued  outcome = iota // 250 with a queue ID
	refused                // closed by the launcher before any greeting
	failed                 // anything else
)

type result struct {
	outcome outcome
	id      string
	detail  string
	subject string
}

var queuedRe = regexp.MustCompile(`^250 2\.0\.0 OK: queued as ([0-9a-z.]+)`)

// session sends one message, pausing hold between commands so that the
// sessions overlap.
func session(addr, subject string, hold time.Duration) result {
	r := result{outcome: failed, subject: subject}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		r.detail = "dial: " + err.Error()
		return r
	}
	defer c.Close()
	br := bufio.NewReader(c)
	reply := func() (string, error) {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		var last string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return last, err
			}
			last = strings.TrimRight(line, "\r\n")
			if len(last) < 4 || last[3] != '-' {
				return last, nil
			}
		}
	}
	greeting, err := reply()
	if err != nil {
		if greeting == "" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			r.outcome = refused
			return r
		}
		r.detail = "greeting: " + err.Error()
		return r
	}
	if !strings.HasPrefix(greeting, "220 ") {
		r.detail = "greeting: " + greeting
		return r
	}
	steps := []struct{ send, want string }{
		{"EHLO load.example\r\n", "250"},
		{"MAIL FROM:<load@client.example>\r\n", "250"},
		{"RCPT TO:<rcpt@remote.example>\r\n", "250"},
		{"DATA\r\n", "354"},
		{"Subject: " + subject + "\r\n\r\nload test\r\n.\r\n", "250"},
	}
	for _, s := range steps {
		time.Sleep(hold)
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, s.send); err != nil {
			r.detail = "write: " + err.Error()
			return r
		}
		line, err := reply()
		if err != nil || !strings.HasPrefix(line, s.want) {
			r.detail = fmt.Sprintf("%q: %q %v", strings.TrimSpace(s.send)[:4], line, err)
			return r
		}
		if m := queuedRe.FindStringSubmatch(line); m != nil {
			r.outcome, r.id = queued, m[1]
		}
	}
	io.WriteString(c, "QUIT\r\n")
	reply()
	return r
}

// watchInstances records the largest number of live children of pid.
func watchInstances(pid int, stop <-chan struct{}) *atomic.Int64 {
	var most atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int64(len(testenv.Children(pid))); n > most.Load() {
				most.Store(n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return &most
}

// probe runs NOOP dialogues against addr until stop and returns the slowest.
func probe(t *testing.T, addr string, stop <-chan struct{}) func() (time.Duration, int) {
	var mu sync.Mutex
	var worst time.Duration
	var n int
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Errorf("probe: %v", err)
				return
			}
			br := bufio.NewReader(c)
			c.SetDeadline(time.Now().Add(30 * time.Second))
			ok := true
			for _, cmd := range []string{"", "NOOP\r\n", "QUIT\r\n"} {
				if cmd != "" {
					io.WriteString(c, cmd)
				}
				if line, err := br.ReadString('\n'); err != nil || line[0] != '2' {
					t.Errorf("probe: %q %v", line, err)
					ok = false
					break
				}
			}
			c.Close()
			el := time.Since(start)
			mu.Lock()
			if ok {
				n++
			}
			worst = max(worst, el)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return func() (time.Duration, int) {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return worst, n
	}
}

// run starts the 200 sessions at once and checks the spool against what
// the clients were told.
func run(t *testing.T, env *testenv.Env, addr string, launcherPid int, hold, ramp time.Duration) (counts [3]int) {
	t.Helper()
	probeAddr := env.SocketActivate()
	stop := make(chan struct{})
	most := watchInstances(launcherPid, stop)
	worst := probe(t, probeAddr, stop)

	results := make([]result, sessions)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < sessions; i++ {
		// A few milliseconds apart: all 200 are open at once all the same
		// (a session lasts longer than the whole ramp), but a burst of 200
		// SYNs in one instant overflows the launcher's listen backlog, and
		// the kernel's SYN retries then stretch the test by 15 s.
		time.Sleep(ramp)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = session(addr, fmt.Sprintf("load-%03d", i), hold)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	slowest, probes := worst()

	acked := map[string]string{}
	for _, r := range results {
		counts[r.outcome]++
		switch r.outcome {
		case queued:
			if prev, dup := acked[r.id]; dup {
				t.Errorf("queue ID %s given to %s and %s", r.id, prev, r.subject)
			}
			acked[r.id] = r.subject
		case failed:
			t.Errorf("%s: %s", r.subject, r.detail)
		}
	}
	// The spool holds exactly the acknowledged messages, each once.
	sp, err := spool.Open(env.SpoolDir, spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	ids := env.Queued()
	seen := map[string]int{}
	for _, id := range ids {
		e, err := sp.ReadEnvelope(id)
		if err != nil {
			t.Errorf("queue/%s: %v", id, err)
			continue
		}
		f, err := sp.OpenData(e)
		if err != nil {
			t.Errorf("queue/%s: %v", id, err)
			continue
		}
		b, _ := io.ReadAll(f)
		f.Close()
		m := regexp.MustCompile(`Subject: (load-\d+)`).FindSubmatch(b)
		if m == nil {
			t.Errorf("queue/%s is not one of ours", id)
			continue
		}
		seen[string(m[1])]++
		if acked[id] == "" {
			t.Errorf("queue/%s (%s) was queued without its client hearing 250", id, m[1])
		} else if acked[id] != string(m[1]) {
			t.Errorf("queue/%s holds %s, but its ID was given to %s", id, m[1], acked[id])
		}
	}
	for subject, n := range seen {
		if n != 1 {
			t.Errorf("%s spooled %d times", subject, n)
		}
	}
	if len(ids) != len(acked) {
		t.Errorf("%d messages acknowledged, %d queued", len(acked), len(ids))
	}
	for _, d := range []string{"tmp", "data"} {
		ents, _ := os.ReadDir(filepath.Join(env.SpoolDir, d))
		if len(ents) != 0 {
			t.Errorf("%s/ holds %d files", d, len(ents))
		}
	}
	if m := most.Load(); m > limit {
		t.Errorf("%d smtp-bs ran at once; the launcher's limit is %d", m, limit)
	}
	if probes == 0 || slowest > 5*time.Second {
		t.Errorf("the machine was not responsive: %d NOOP dialogues, the slowest took %v", probes, slowest)
	}
	t.Logf("%d sessions in %v: %d queued, %d refused by the launcher; at most %d smtp-bs at once; %d NOOP probes, slowest %v",
		sessions, elapsed.Round(time.Millisecond), counts[queued], counts[refused], most.Load(), probes, slowest.Round(time.Millisecond))
	return counts
}

func newEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.New(t)
	env.Extra["smtp"] = "max_errors = 100"
	env.WriteConfig()
	return env
}

// TestXinetdInstances: xinetd with instances = 10 closes the connections
// over the limit at once; the rest are served.
func TestXinetdInstances(t *testing.T) {
	testenv.NeedRoot(t, "xinetd switches to user mail")
	xinetd := testenv.Need(t, "xinetd")
	env := newEnv(t)
	addr := testenv.FreePort(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := filepath.Join(env.Dir, "xinetd.conf")
	// cps is raised from its default (50/s), which would throttle the
	// burst; per_source is lifted since every client is 127.0.0.1.
	entry := fmt.Sprintf(`defaults
{
}
service smtp-bs-load
{
	type		= UNLISTED
	socket_type	= stream
	protocol	= tcp
	wait		= no
	user		= mail
	group		= mail
	server		= %s
	server_args	= -config %s
	bind		= 127.0.0.1
	port		= %s
	instances	= %d
	per_source	= UNLIMITED
	cps		= 10000 1
	flags		= NOLIBWRAP
	log_on_failure	= HOST ATTEMPT
}
`, testenv.Bin(t, "smtp-bs"), env.CfgFile, port, limit)
	if err := os.WriteFile(conf, []byte(entry), 0o644); err != nil {
		t.Fatal(err)
	}
	x := testenv.Start(t, xinetd, "-dontfork", "-filelog", filepath.Join(env.Dir, "xinetd.log"), "-f", conf)
	testenv.WaitListen(t, addr)
	counts := run(t, env, addr, x.Process.Pid, 200*time.Millisecond, 5*time.Millisecond)
	if counts[refused] == 0 {
		t.Errorf("xinetd refused no connection: the limit of %d was never reached", limit)
	}
	if counts[queued] < limit {
		t.Errorf("only %d sessions were served", counts[queued])
	}
	// After the storm, the service answers again at once.
	start := time.Now()
	d := testenv.Dial(t, addr, 220)
	d.Cmd("NOOP", 250)
	d.Cmd("QUIT", 221)
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a NOOP dialogue after the load took %v", el)
	}
}

// TestTcpserverConcurrency: tcpserver -c 10 holds the connections over the
// limit until a session ends, so every one is eventually served.
func TestTcpserverConcurrency(t *testing.T) {
	tcpserver := testenv.Need(t, "tcpserver")
	env := newEnv(t)
	addr := testenv.FreePort(t)
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-c", fmt.Sprint(limit), "-b", "256", "-R", "-H"}
	if testenv.IsRoot() {
		uid, gid := mailIDs(t)
		args = append(args, "-u", uid, "-g", gid)
	}
	args = append(args, host, port, testenv.Bin(t, "smtp-bs"), "-config", env.CfgFile)
	ts := testenv.Start(t, tcpserver, args...)
	testenv.WaitListen(t, addr)
	counts := run(t, env, addr, ts.Process.Pid, 10*time.Millisecond, 0)
	if counts[queued] != sessions {
		t.Errorf("%d of %d sessions served; tcpserver should have made the others wait", counts[queued], sessions)
	}
}

func mailIDs(t *testing.T) (string, string) {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 3 && f[0] == "mail" {
			return f[2], f[3]
		}
	}
	t.Fatal("no user mail")
	return "", ""
}
