// Package crash kills smtp-bs and qrun with SIGKILL (kill -9) at hundreds
// of points of their work, and checks after each kill what an admin relies
// on: the spool holds only whole messages, every message that got 250 is
// still queued or delivered, and the next qrun -once delivers every
// recipient at least once.
//
// The kill points come from four sources:
//   - failpoints: the real programs built with -tags failpoint die at the
//     Nth spool call (create, write, fsync, link, rename, statfs), before
//     it or right after it, for every N a clean run makes;
//   - the smarthost: the test's sink kills qrun at the Nth event of the
//     dialogue (connect, MAIL, each RCPT, end of DATA before the reply);
//   - strace -e inject=SYSCALL:signal=SIGKILL:when=N on the unmodified
//     smtp-bs binary;
//   - the client: kill -9 after a (seeded) random number of bytes of the
//     client's stream, and at random times during a session.
package crash

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
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

// seed fixes the random kill points, so a failure can be replayed.
const seed = 20261122

var (
	killsSMTP atomic.Int64 // smtp-bs processes killed
	killsQrun atomic.Int64 // qrun processes killed
	acked     atomic.Int64 // messages that got 250 before or around a kill
	lost      atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if n := killsSMTP.Load() + killsQrun.Load(); n > 0 {
		fmt.Printf("crash: %d kill points exercised (smtp-bs %d, qrun %d), %d acknowledged messages checked, %d messages lost\n",
			n, killsSMTP.Load(), killsQrun.Load(), acked.Load(), lost.Load())
	}
	os.Exit(code)
}

// report logs how many kills a test made.
func report(t *testing.T) {
	s0, q0 := killsSMTP.Load(), killsQrun.Load()
	t.Cleanup(func() {
		t.Logf("%d kill points (smtp-bs %d, qrun %d)", killsSMTP.Load()-s0+killsQrun.Load()-q0, killsSMTP.Load()-s0, killsQrun.Load()-q0)
	})
}

// message is one mail of a session's script.
type message struct {
	subject string
	rcpts   []string
	content string // unstuffed
	bdat    bool
}

func script(tag string) []message {
	var big strings.Builder
	big.WriteString("From: s@client.example\r\nSubject: " + tag + "-big\r\n\r\n")
	for i := 0; big.Len() < 150<<10; i++ {
		fmt.Fprintf(&big, "line %06d of a message that needs several writes to the spool\r\n", i)
	}
	big.WriteString(".a line that starts with a dot\r\n")
	return []message{
		{tag + "-small", []string{"a@remote.example", "b@remote.example"},
			"From: s@client.example\r\nSubject: " + tag + "-small\r\n\r\nHello.\r\n.dot\r\n", false},
		{tag + "-big", []string{"c@remote.example"}, big.String(), false},
		{tag + "-bdat", []string{"d@remote.example", "e@remote.example"},
			"From: s@client.example\r\nSubject: " + tag + "-bdat\r\n\r\nChunked.\r\n", true},
	}
}

// stream renders the whole session as one pipelined byte stream; smtp-bs
// holds back what follows DATA until it has answered 354.
func stream(msgs []message) []byte {
	var b bytes.Buffer
	b.WriteString("EHLO client.example\r\n")
	for _, m := range msgs {
		b.WriteString("MAIL FROM:<s@client.example>\r\n")
		for _, r := range m.rcpts {
			fmt.Fprintf(&b, "RCPT TO:<%s>\r\n", r)
		}
		if m.bdat {
			half := len(m.content) / 2
			fmt.Fprintf(&b, "BDAT %d\r\n%s", half, m.content[:half])
			fmt.Fprintf(&b, "BDAT %d LAST\r\n%s", len(m.content)-half, m.content[half:])
			continue
		}
		b.WriteString("DATA\r\n")
		for _, line := range strings.SplitAfter(m.content, "\r\n") {
			if strings.HasPrefix(line, ".") {
				b.WriteString(".")
			}
			b.WriteString(line)
		}
		b.WriteString(".\r\n")
	}
	b.WriteString("QUIT\r\n")
	return b.Bytes()
}

// world is one installation with its own spool and smarthost.
type world struct {
	t    *testing.T
	env  *testenv.Env
	sink *sink
}

// newWorld makes an installation whose qrun delivers one message at a time
// (so that the Nth spool call is the same in every run).
func newWorld(t *testing.T) *world { return newWorldConcurrency(t, 1) }

func newWorldConcurrency(t *testing.T, conc int) *world {
	t.Helper()
	s := newSink(t)
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"\nmax_concurrency = %d", s.addr, conc)
	e.Extra["smtp"] = "max_errors = 100"
	e.WriteConfig()
	return &world{t: t, env: e, sink: s}
}

// session runs smtp-bs (bin) on one connection, as inetd or tcpserver
// would: the socket on fds 0 and 1. It returns the client's end and the
// process.
func (w *world) session(bin string, extraEnv []string, wrap ...string) (net.Conn, *exec.Cmd) {
	w.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		w.t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		w.t.Fatal(err)
	}
	f, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	args := append(append([]string(nil), wrap...), bin, "-config", w.env.CfgFile)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout = f, f
	cmd.Env = append(os.Environ(), extraEnv...)
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { client.Close() })
	return client, cmd
}

// killedBySIGKILL reports whether the finished process died of SIGKILL.
func killedBySIGKILL(err error) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

var queuedRe = regexp.MustCompile(`^250 2\.0\.0 OK: queued as ([0-9a-z.]+)`)

// converse waits for the greeting (a client that talks first is refused),
// sends data in one go, and reads reply lines until EOF, or until nothing
// arrives for quiet (if quiet > 0). It returns the queue IDs of the
// messages that got 250, in order, and any reply that is not a success.
func converse(c net.Conn, data []byte, quiet time.Duration) (ids []string, bad []string) {
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	greeting, err := r.ReadString('\n')
	if err != nil {
		return nil, nil
	}
	if !strings.HasPrefix(greeting, "220 ") {
		return nil, []string{greeting}
	}
	go c.Write(data)
	for {
		if quiet > 0 {
			c.SetReadDeadline(time.Now().Add(quiet))
		} else {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return ids, bad
		}
		line = strings.TrimRight(line, "\r\n")
		if m := queuedRe.FindStringSubmatch(line); m != nil {
			ids = append(ids, m[1])
		} else if len(line) > 0 && line[0] != '2' && line[0] != '3' {
			bad = append(bad, line)
		}
	}
}

// checkSpool asserts that every queued message is whole (its envelope
// parses, its data has the size the envelope says) and that nothing was
// moved to corrupt/: a crash must never damage a committed file.
func (w *world) checkSpool(point string) map[string]*spool.Envelope {
	w.t.Helper()
	sp, err := spool.Open(w.env.SpoolDir, spool.Ops{})
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]*spool.Envelope{}
	for _, id := range w.env.Queued() {
		if !spool.ValidID(id) {
			w.t.Errorf("%s: queue/%s is not a queue ID", point, id)
			continue
		}
		env, err := sp.ReadEnvelope(id)
		if err != nil {
			w.t.Errorf("%s: queue/%s: %v", point, id, err)
			continue
		}
		f, err := sp.OpenData(env)
		if err != nil {
			w.t.Errorf("%s: queue/%s: %v", point, id, err)
			continue
		}
		f.Close()
		if _, err := sp.ReadState(env); err != nil {
			w.t.Errorf("%s: state/%s: %v", point, id, err)
		}
		out[id] = env
	}
	if ents, _ := os.ReadDir(filepath.Join(w.env.SpoolDir, "corrupt")); len(ents) != 0 {
		w.t.Errorf("%s: corrupt/ holds %d files after a crash", point, len(ents))
	}
	return out
}

// qrun runs the normal qrun -once and fails on a bad exit (69, "some
// recipients failed for good", is the refused recipient).
func (w *world) qrun(point string) {
	w.t.Helper()
	out, code := w.env.Qrun("-once")
	if code != 0 && code != 69 {
		w.t.Errorf("%s: qrun -once exit %d\n%s\nlog:\n%s", point, code, out, w.env.Log())
	}
}

// stripReceived removes our Received header (a folded field).
func stripReceived(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte("Received: ")) {
		return b
	}
	i := bytes.Index(b, []byte("\r\n"))
	for i >= 0 && i+2 < len(b) && (b[i+2] == '\t' || b[i+2] == ' ') {
		i = i + 2 + bytes.Index(b[i+2:], []byte("\r\n"))
	}
	return b[i+2:]
}

// checkDelivered asserts that each message in must reached every one of
// its recipients at least once, whole, and that the queue is empty.
func (w *world) checkDelivered(point string, must []message) {
	w.t.Helper()
	for _, m := range must {
		for _, r := range m.rcpts {
			if strings.HasPrefix(r, "refuse") {
				continue
			}
			if w.sink.delivered(m.subject, r) == 0 {
				lost.Add(1)
				w.t.Errorf("%s: %s for <%s> LOST: acknowledged or queued, never delivered", point, m.subject, r)
			}
		}
		if got := w.sink.content(m.subject); got != nil && string(stripReceived(got)) != m.content {
			w.t.Errorf("%s: %s delivered with other content (%d bytes, want %d)", point, m.subject, len(stripReceived(got)), len(m.content))
		}
	}
	if q := w.env.Queued(); len(q) != 0 {
		w.t.Errorf("%s: %d messages still queued after qrun -once: %v", point, len(q), q)
	}
}

// afterSMTPKill checks a spool after smtp-bs was killed: messages that got
// 250 are queued; then one qrun -once delivers everything queued.
func (w *world) afterSMTPKill(point string, msgs []message, ids []string) {
	w.t.Helper()
	queued := w.checkSpool(point)
	for i, id := range ids {
		acked.Add(1)
		if queued[id] == nil {
			lost.Add(1)
			w.t.Errorf("%s: message %d got 250 (queued as %s) but is not in the queue", point, i, id)
		}
	}
	// What must arrive: every acknowledged message, and every message that
	// made it into the queue without hearing 250 (committed just before
	// the kill: the client will send it again, a duplicate).
	var must []message
	for i, m := range msgs {
		if i < len(ids) {
			must = append(must, m)
		}
	}
	bySubject := map[string]message{}
	for _, m := range msgs {
		bySubject[m.subject] = m
	}
	sp, _ := spool.Open(w.env.SpoolDir, spool.Ops{})
	for id, env := range queued {
		f, err := sp.OpenData(env)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(f)
		f.Close()
		sm := subjectRe.FindSubmatch(b)
		if sm == nil {
			w.t.Errorf("%s: queue/%s holds no subject: %.100q", point, id, b)
			continue
		}
		m, ok := bySubject[string(sm[1])]
		if !ok {
			w.t.Errorf("%s: queue/%s is no message of ours", point, id)
			continue
		}
		if string(stripReceived(b)) != m.content {
			w.t.Errorf("%s: queue/%s (%s) is not the whole message", point, id, m.subject)
		}
		if strings.Join(env.Rcpts, ",") != strings.Join(m.rcpts, ",") {
			w.t.Errorf("%s: queue/%s recipients %v, want %v", point, id, env.Rcpts, m.rcpts)
		}
		must = append(must, m)
	}
	w.qrun(point)
	w.checkDelivered(point, must)
}

// traceCalls runs bin once with a trace file and returns the spool calls
// it made.
func traceCalls(t *testing.T, run func(env []string)) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trace")
	os.WriteFile(p, nil, 0o666)
	os.Chmod(p, 0o666)
	os.Chmod(filepath.Dir(p), 0o777)
	run([]string{"SMTPBS_FAILPOINT_TRACE=" + p})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestKillSMTPAtEverySpoolCall: smtp-bs dies before and after each spool
// call of a three-message session (MAIL's statfs, then create, the writes
// of DATA and BDAT, the fsyncs, the links of the commit).
func TestKillSMTPAtEverySpoolCall(t *testing.T) {
	report(t)
	bin := testenv.FailpointBin(t, "smtp-bs")
	calls := traceCalls(t, func(env []string) {
		w := newWorld(t)
		msgs := script("trace")
		c, cmd := w.session(bin, env)
		ids, bad := converse(c, stream(msgs), 0)
		cmd.Wait()
		if len(ids) != len(msgs) || len(bad) != 0 {
			t.Fatalf("clean run: %d queued, bad replies %v", len(ids), bad)
		}
	})
	if len(calls) < 3*6 { // three messages of statfs, create, write(s), fsync, link, fsync
		t.Fatalf("a clean session made only %d spool calls: %v", len(calls), calls)
	}
	for i := range calls {
		for _, when := range []string{"", ":after"} {
			point := fmt.Sprintf("smtp-bs killed %s spool call %d (%s)", map[string]string{"": "before", ":after": "after"}[when], i+1, calls[i])
			w := newWorld(t)
			msgs := script(fmt.Sprintf("p%d%s", i, strings.TrimPrefix(when, ":")))
			c, cmd := w.session(bin, []string{fmt.Sprintf("SMTPBS_FAILPOINT=spool:%d%s", i+1, when)})
			ids, _ := converse(c, stream(msgs), 0)
			if err := cmd.Wait(); !killedBySIGKILL(err) {
				t.Fatalf("%s: smtp-bs was not killed (%v)", point, err)
			}
			killsSMTP.Add(1)
			w.afterSMTPKill(point, msgs, ids)
		}
	}
}

// TestKillSMTPAtRandomBytes: the client sends a random prefix of its
// stream, waits for the answers, and smtp-bs is killed there: mid-command,
// mid-DATA, right after the final dot, between messages.
func TestKillSMTPAtRandomBytes(t *testing.T) {
	report(t)
	bin := testenv.Bin(t, "smtp-bs")
	rng := rand.New(rand.NewPCG(seed, 1))
	const points = 60
	for i := 0; i < points; i++ {
		msgs := script(fmt.Sprintf("b%d", i))
		s := stream(msgs)
		cut := rng.IntN(len(s)) + 1
		if i%4 == 0 {
			// Right after, or just before, an end of data.
			ends := endsOfData(s)
			cut = ends[rng.IntN(len(ends))] + rng.IntN(3) - 1
		}
		point := fmt.Sprintf("smtp-bs killed after %d of %d bytes", cut, len(s))
		w := newWorld(t)
		c, cmd := w.session(bin, nil)
		ids, _ := converse(c, s[:cut], 100*time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		killsSMTP.Add(1)
		w.afterSMTPKill(point, msgs, ids)
	}
}

// endsOfData returns the offsets just past each "\r\n.\r\n" and BDAT LAST chunk.
func endsOfData(s []byte) []int {
	var out []int
	for off := 0; ; {
		i := bytes.Index(s[off:], []byte("\r\n.\r\n"))
		if i < 0 {
			break
		}
		off += i + 5
		out = append(out, off)
	}
	if i := bytes.LastIndex(s, []byte("QUIT\r\n")); i > 0 {
		out = append(out, i)
	}
	return out
}

// TestKillSMTPAtRandomTimes: the whole stream is sent at once and smtp-bs
// is killed at a random moment of the session.
func TestKillSMTPAtRandomTimes(t *testing.T) {
	report(t)
	bin := testenv.Bin(t, "smtp-bs")
	// How long does a session take here?
	w := newWorld(t)
	start := time.Now()
	c, cmd := w.session(bin, nil)
	converse(c, stream(script("timing")), 0)
	cmd.Wait()
	span := time.Since(start)
	rng := rand.New(rand.NewPCG(seed, 2))
	const points = 60
	for i := 0; i < points; i++ {
		msgs := script(fmt.Sprintf("t%d", i))
		w := newWorld(t)
		c, cmd := w.session(bin, nil)
		delay := time.Duration(rng.Int64N(int64(span)))
		point := fmt.Sprintf("smtp-bs killed %v into a %v session", delay, span)
		var ids []string
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, _ = converse(c, stream(msgs), 0)
		}()
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		c.Close()
		wg.Wait()
		if killedBySIGKILL(err) {
			killsSMTP.Add(1)
		}
		w.afterSMTPKill(point, msgs, ids)
	}
}

// TestKillSMTPWithStrace: the unmodified binary, killed by strace at the
// Nth fsync, link or unlink (the unlinks of tmp/ come after the commit
// point and before the 250). strace counts per thread, and Go moves work
// between threads, so N is "the Nth on one thread": some N never fire,
// and only kills that happened are counted.
func TestKillSMTPWithStrace(t *testing.T) {
	report(t)
	st := testenv.Need(t, "strace")
	bin := testenv.Bin(t, "smtp-bs")
	for _, sc := range []struct {
		name string
		max  int
	}{{"fsync", 12}, {"linkat", 6}, {"unlinkat", 6}} {
		for n := 1; n <= sc.max; n++ {
			point := fmt.Sprintf("strace kills smtp-bs at %s #%d", sc.name, n)
			msgs := script(fmt.Sprintf("s%s%d", sc.name, n))
			w := newWorld(t)
			c, cmd := w.session(bin, nil, st, "-f", "-qq", "-o", "/dev/null", "-e", "trace="+sc.name,
				"-e", fmt.Sprintf("inject=%s:signal=SIGKILL:when=%d", sc.name, n))
			ids, _ := converse(c, stream(msgs), 0)
			err := cmd.Wait()
			if killedBySIGKILL(err) || strings.Contains(fmt.Sprint(err), "killed") {
				killsSMTP.Add(1)
			} else if len(ids) != len(msgs) {
				t.Errorf("%s: not killed, yet only %d of %d messages queued (%v)", point, len(ids), len(msgs), err)
			}
			w.afterSMTPKill(point, msgs, ids)
		}
	}
}

// fill queues the three messages of a session (one recipient of the
// second is refused by the smarthost, so the pass also makes a bounce)
// with the real smtp-bs.
func (w *world) fill(tag string) []message {
	w.t.Helper()
	msgs := script(tag)
	msgs[1].rcpts = append(msgs[1].rcpts, "refuse@remote.example")
	c, cmd := w.session(testenv.Bin(w.t, "smtp-bs"), nil)
	ids, bad := converse(c, stream(msgs), 0)
	cmd.Wait()
	if len(ids) != len(msgs) || len(bad) != 0 {
		w.t.Fatalf("filling the queue: %d queued, bad replies %v", len(ids), bad)
	}
	return msgs
}

// afterQrunKill: the spool is whole; the next qrun -once delivers every
// recipient at least once, and a second pass sends the bounce (queued in
// the first) and leaves the queue empty.
func (w *world) afterQrunKill(point string, msgs []message) {
	w.t.Helper()
	w.checkSpool(point)
	w.sink.arm(0)
	w.qrun(point)
	for _, m := range msgs {
		for _, r := range m.rcpts {
			if !strings.HasPrefix(r, "refuse") && w.sink.delivered(m.subject, r) == 0 {
				lost.Add(1)
				w.t.Errorf("%s: %s for <%s> LOST: not delivered by the next qrun -once", point, m.subject, r)
			}
		}
	}
	w.qrun(point)
	w.checkDelivered(point, msgs)
	if w.sink.bounced(msgs[1].subject) == 0 {
		lost.Add(1)
		w.t.Errorf("%s: the bounce for the refused recipient of %s never came", point, msgs[1].subject)
	}
	acked.Add(int64(len(msgs)))
}

// cleanExit: exit 0, or 69 for the recipient the smarthost refuses.
func cleanExit(err error) bool {
	ee, ok := err.(*exec.ExitError)
	return err == nil || ok && ee.ExitCode() == 69
}

// runQrun starts the failpoint qrun -once and waits for it.
func (w *world) runQrun(extraEnv []string) error {
	cmd := exec.Command(testenv.FailpointBin(w.t, "qrun"), "-config", w.env.CfgFile, "-once")
	cmd.Env = append(os.Environ(), extraEnv...)
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.sink.victim.Store(int64(cmd.Process.Pid))
	return cmd.Wait()
}

// TestKillQrunAtEverySpoolCall: qrun dies before and after each spool call
// of a pass: the state records after each transaction (after the remote's
// 250, before the record is written, before it is synced), the bounce's
// commit, the removal of finished messages.
func TestKillQrunAtEverySpoolCall(t *testing.T) {
	report(t)
	calls := traceCalls(t, func(env []string) {
		w := newWorld(t)
		w.fill("qtrace")
		if err := w.runQrun(env); !cleanExit(err) {
			t.Fatalf("clean qrun: %v", err)
		}
	})
	if len(calls) < 10 {
		t.Fatalf("a clean pass made only %d spool calls: %v", len(calls), calls)
	}
	for i := range calls {
		for _, when := range []string{"", ":after"} {
			point := fmt.Sprintf("qrun killed %s spool call %d (%s)", map[string]string{"": "before", ":after": "after"}[when], i+1, calls[i])
			w := newWorld(t)
			msgs := w.fill(fmt.Sprintf("q%d%s", i, strings.TrimPrefix(when, ":")))
			w.sink.arm(0)
			if err := w.runQrun([]string{fmt.Sprintf("SMTPBS_FAILPOINT=spool:%d%s", i+1, when)}); !killedBySIGKILL(err) {
				t.Fatalf("%s: qrun was not killed (%v)", point, err)
			}
			killsQrun.Add(1)
			w.afterQrunKill(point, msgs)
		}
	}
}

// TestKillQrunMidDialogue: the smarthost kills qrun at each event of the
// pass's dialogues: right after it connected, after MAIL, after each RCPT,
// and once the content is sent but before the 250.
func TestKillQrunMidDialogue(t *testing.T) {
	report(t)
	w := newWorld(t)
	w.fill("dtrace")
	w.sink.arm(0)
	if err := w.runQrun(nil); !cleanExit(err) {
		t.Fatalf("clean qrun: %v", err)
	}
	events := w.sink.events.Load()
	if events < 10 {
		t.Fatalf("a clean pass made only %d dialogue events", events)
	}
	for k := int64(1); k <= events; k++ {
		point := fmt.Sprintf("qrun killed by the smarthost at dialogue event %d of %d", k, events)
		w := newWorld(t)
		msgs := w.fill(fmt.Sprintf("d%d", k))
		w.sink.arm(k)
		err := w.runQrun(nil)
		if !w.sink.killed.Load() || !killedBySIGKILL(err) {
			t.Fatalf("%s: qrun was not killed (%v)", point, err)
		}
		killsQrun.Add(1)
		w.afterQrunKill(point, msgs)
	}
}

// TestKillQrunAtRandomTimes: qrun delivering several messages at once
// (the default concurrency) is killed at a random moment of its pass.
func TestKillQrunAtRandomTimes(t *testing.T) {
	report(t)
	w := newWorldConcurrency(t, 10)
	w.fill("rtiming")
	start := time.Now()
	if err := w.runQrun(nil); !cleanExit(err) {
		t.Fatalf("clean qrun: %v", err)
	}
	span := time.Since(start)
	rng := rand.New(rand.NewPCG(seed, 3))
	const points = 30
	for i := 0; i < points; i++ {
		w := newWorldConcurrency(t, 10)
		msgs := w.fill(fmt.Sprintf("r%d", i))
		delay := time.Duration(rng.Int64N(int64(span)))
		point := fmt.Sprintf("qrun killed %v into a %v pass", delay, span)
		cmd := exec.Command(testenv.FailpointBin(t, "qrun"), "-config", w.env.CfgFile, "-once")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); killedBySIGKILL(err) {
			killsQrun.Add(1)
		}
		w.afterQrunKill(point, msgs)
	}
}
