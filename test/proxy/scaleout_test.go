package proxy

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"smtp-bs/internal/testenv"
)

// TestTwoNodes is the scale-out of docs/scale-out.md: HAProxy balancing
// two smtp-bs nodes, each with its own spool. Halfway through a run of 500
// messages node a's launcher is stopped (as a node is drained or dies);
// the client retries on 4xx and on connection errors, as an MTA does.
// Five messages go in each session. Every message must end up queued on
// one node or the other exactly once,
// and qrun -once on each node must deliver them all.
func TestTwoNodes(t *testing.T) {
	const total, workers, perSession = 500, 4, 5
	sink := testenv.NewSink(t)
	var nodes []*testenv.Env
	var backends []backend
	var launchers []*exec.Cmd
	for _, name := range []string{"a", "b"} {
		env := testenv.New(t)
		env.Hostname = name + ".mx.test.example"
		env.Extra["proxy"] = fmt.Sprintf("trusted = [%q]", balancer)
		env.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
		env.WriteConfig()
		addr, cmd := env.SocketActivateCmd()
		nodes = append(nodes, env)
		backends = append(backends, backend{name, addr})
		launchers = append(launchers, cmd)
	}
	front := testenv.FreePort(t)
	h := startHAProxy(t, nodes[0].Dir, front, 2, backends...)
	h.waitChecked(t, "a")
	h.waitChecked(t, "b")

	start := time.Now()
	var sent, retries atomic.Int64
	var stopOnce sync.Once
	next := make(chan []int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	deadline := time.Now().Add(40 * time.Second)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range next {
				for len(batch) > 0 {
					n, err := sendBatch(front, batch)
					batch = batch[n:]
					if err == nil {
						break
					}
					var se *smtp.SMTPError
					if errors.As(err, &se) && se.Code >= 500 {
						errs <- fmt.Errorf("message %d: permanent failure: %w", batch[0], err)
						return
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("message %d: still failing at the deadline: %w", batch[0], err)
						return
					}
					retries.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
				if sent.Add(perSession) == total/2 {
					// Node a's launcher stops taking connections; its
					// sessions in progress finish.
					stopOnce.Do(func() { stopLauncher(t, launchers[0]) })
				}
			}
		}()
	}
feed:
	for i := 0; i < total; i += perSession {
		batch := make([]int, perSession)
		for j := range batch {
			batch[j] = i + j
		}
		select {
		case next <- batch:
		case err := <-errs:
			t.Error(err)
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("500 messages acknowledged in %v, %d retries", time.Since(start), retries.Load())

	// Each message queued exactly once, on one node or the other.
	seen := map[string]string{}
	for i, env := range nodes {
		ids := env.Queued()
		if len(ids) == 0 {
			t.Errorf("node %s queued nothing", backends[i].name)
		}
		for _, id := range ids {
			_, msg := env.Message(id)
			subj := subject(msg)
			if prev, dup := seen[subj]; dup {
				t.Errorf("%q queued twice (%s and %s/%s)", subj, prev, backends[i].name, id)
			}
			seen[subj] = backends[i].name + "/" + id
		}
	}
	// Round robin gave a about half of the first 250 and b the rest.
	if a, b := len(nodes[0].Queued()), len(nodes[1].Queued()); a >= total/2 || b <= total/2 {
		t.Errorf("node a queued %d, node b %d: node a took mail after its launcher stopped", a, b)
	}
	if len(seen) != total {
		t.Fatalf("%d distinct messages queued across the nodes, want %d", len(seen), total)
	}

	// Each node's qrun delivers its own spool.
	start = time.Now()
	defer func() { t.Logf("qrun -once on both nodes: %v", time.Since(start)) }()
	for i, env := range nodes {
		if out, code := env.Qrun("-once"); code != 0 {
			t.Fatalf("qrun -once on node %s: exit %d\n%s", backends[i].name, code, out)
		}
		if q := env.Queued(); len(q) != 0 {
			t.Errorf("node %s: %d still queued after qrun -once", backends[i].name, len(q))
		}
	}
	got := map[string]int{}
	for _, m := range sink.Messages() {
		got[subject(string(m.Data))]++
	}
	if len(got) != total {
		t.Errorf("the sink got %d distinct messages, want %d", len(got), total)
	}
	for s, n := range got {
		if n != 1 {
			t.Errorf("the sink got %q %d times", s, n)
		}
	}
}

// sendBatch sends messages in one session, as an MTA does with what it
// has queued for one destination, and returns how many were queued (250)
// before an error.
func sendBatch(addr string, msgs []int) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	c := smtp.NewClient(conn)
	if err := c.Hello("client.test"); err != nil {
		return 0, err
	}
	for n, i := range msgs {
		if err := c.Mail("sender@client.test", nil); err != nil {
			return n, err
		}
		if err := c.Rcpt("someone@elsewhere.example", nil); err != nil {
			return n, err
		}
		w, err := c.Data()
		if err != nil {
			return n, err
		}
		fmt.Fprintf(w, "Subject: message %d\r\n\r\nbody %d\r\n", i, i)
		if err := w.Close(); err != nil {
			return n, err
		}
	}
	c.Quit() // all queued already: a failure here changes nothing
	return len(msgs), nil
}

func subject(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok {
			return s
		}
	}
	return ""
}

// stopLauncher ends the launcher we started (by its PID): it stops
// listening; the sessions it spawned run on to their end.
func stopLauncher(t *testing.T, cmd *exec.Cmd) {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("stop launcher %d: %v", cmd.Process.Pid, err)
	}
}
