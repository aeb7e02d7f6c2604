// Package interop delivers with the real qrun to real next hops from
// Debian, each started by the test on 127.0.0.1, and prints one line per
// cell of the matrix (go test -v ./test/interop | grep ^interop:): the
// server and its version, the cell, what was delivered, bounced and
// deferred, what was lost (must be 0), and the pass's wall time, which the
// configured timeouts bound. docs/interop.md holds the matrix.
package interop

import (
	"bytes"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
)

// msg is one message to queue: its recipients and content.
type msg struct {
	from  string
	rcpts []string
	data  string
}

func message(subject, body string) string {
	return "From: Sender <sender@client.example>\r\nTo: rcpt@remote.example\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@client.example>\r\n\r\n" + body
}

// outcome counts the recipients of one qrun pass by what became of them.
type outcome struct {
	sent, bounced, deferred, total int
	took                           time.Duration
	log                            string
}

// lost is what no outcome accounts for: a recipient neither sent, bounced
// nor deferred.
func (o outcome) lost() int { return o.total - o.sent - o.bounced - o.deferred }

var eventRe = regexp.MustCompile(`qrun\[\d+\]: (sent|bounced|deferred) id=(\S+) .*rcpt=(<[^>]*>)`)

// pass queues msgs through a real smtp-bs, runs qrun -once and counts what
// its log says of each recipient (bounces it queued are not counted).
func pass(t *testing.T, e *testenv.Env, msgs []msg) outcome {
	t.Helper()
	addr := e.SocketActivate()
	o := outcome{}
	for _, m := range msgs {
		if err := smtp.SendMail(addr, nil, m.from, m.rcpts, []byte(m.data)); err != nil {
			t.Fatalf("queueing: %v", err)
		}
		o.total += len(m.rcpts)
	}
	start := time.Now()
	out, code := e.Qrun("-once")
	o.took = time.Since(start)
	if code != 0 && code != 69 && code != 75 { // the pass's summary: 69 some bounced, 75 some deferred
		t.Fatalf("qrun -once: %d %s\n%s", code, out, e.Log())
	}
	o.log = e.Log()
	last := map[string]string{}
	for _, m := range eventRe.FindAllStringSubmatch(o.log, -1) {
		if strings.Contains(m[2], ".") {
			continue // a DSN of ours (.b, .w, .s), not one of the messages
		}
		last[m[2]+m[3]] = m[1]
	}
	for _, ev := range last {
		switch ev {
		case "sent":
			o.sent++
		case "bounced":
			o.bounced++
		case "deferred":
			o.deferred++
		}
	}
	return o
}

// report prints the cell's line and checks it: the expected counts, none
// lost, and the wall time within limit.
func report(t *testing.T, server, version, cell string, o outcome, sent, bounced, deferred int, limit time.Duration) {
	t.Helper()
	fmt.Printf("interop: %-20s %-16s %-48s sent %d bounced %d deferred %d lost %d in %.2fs\n",
		server, version, cell, o.sent, o.bounced, o.deferred, o.lost(), o.took.Seconds())
	if o.sent != sent || o.bounced != bounced || o.deferred != deferred || o.lost() != 0 {
		t.Errorf("%s %s: sent %d bounced %d deferred %d lost %d; want %d %d %d 0\n%s", server, cell,
			o.sent, o.bounced, o.deferred, o.lost(), sent, bounced, deferred, o.log)
	}
	if o.took > limit {
		t.Errorf("%s %s: the pass took %v, more than the %v its timeouts allow", server, cell, o.took, limit)
	}
}

// hop writes addr as a smarthost without an MX lookup.
func hop(addr string) string { return "[" + strings.Replace(addr, ":", "]:", 1) }

func msgs(n int, prefix string, rcpts ...string) []msg {
	var out []msg
	for i := 0; i < n; i++ {
		out = append(out, msg{from: "sender@client.example", rcpts: rcpts, data: message(fmt.Sprintf("%s %03d", prefix, i), "Body.\r\n")})
	}
	return out
}

// timeouts is the [delivery] of every cell: short enough that a stalled
// stage shows in the wall time, long enough for a loaded machine.
const timeouts = "connect_timeout = \"5s\"\ncommand_timeout = \"10s\"\ndata_timeout = \"10s\"\n"

func TestSmtpSink(t *testing.T) {
	sink := testenv.StartSmtpSink(t)
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\n%s", hop(sink.Addr), timeouts)
	e.WriteConfig()
	o := pass(t, e, msgs(20, "sink", "r@remote.example"))
	report(t, "postfix smtp-sink", postfixVersion(t), "20 messages, opportunistic TLS", o, 20, 0, 0, 30*time.Second)
	if n := len(sink.Subjects()); n != 20 {
		t.Errorf("smtp-sink got %d messages, want 20", n)
	}
}

// daemonDir is a temporary directory that daemons running as other users
// can reach.
func daemonDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	return dir
}

// withUsers writes dir/passwd and dir/group, the machine's with extra
// lines, for a daemon's mount namespace: the machine's are not touched.
func withUsers(dir, passwd, group string) {
	p, _ := os.ReadFile("/etc/passwd")
	g, _ := os.ReadFile("/etc/group")
	os.WriteFile(filepath.Join(dir, "passwd"), append(p, passwd...), 0o644)
	os.WriteFile(filepath.Join(dir, "group"), append(g, group...), 0o644)
}

// daemon is a server the test started: its address and its output.
type daemon struct {
	addr string
	mu   sync.Mutex
	out  bytes.Buffer
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.Write(p)
}

func (d *daemon) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// count counts what the server printed that contains sub.
func (d *daemon) count(sub string) int {
	time.Sleep(100 * time.Millisecond) // the last message is printed after its reply
	return strings.Count(d.String(), sub)
}

// start runs cmd until the test ends, when stop ends it (and so its
// children), and waits until d.addr listens. A failed test logs its
// output and logFile.
func (d *daemon) start(t *testing.T, cmd *exec.Cmd, stop os.Signal, logFile string) {
	t.Helper()
	cmd.Stdout, cmd.Stderr = d, d
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("%s: %s\nlog:\n%s", filepath.Base(cmd.Path), d.String(), b)
		}
	})
	testenv.WaitListen(t, d.addr)
}

// unpacked finds a root where Debian packages were unpacked with dpkg -x
// (an MTA that conflicts with Postfix) by the file bin in it: $env, or
// bench/.cache/root, where bench/fetch.sh (run by scripts/deps.sh) puts
// them. Under CI=true a missing one fails the test.
func unpacked(t *testing.T, env, bin, pkgs string) string {
	t.Helper()
	for _, r := range []string{os.Getenv(env), filepath.Join(testenv.Root(), "bench", ".cache", "root")} {
		if r == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(r, bin)); err == nil {
			return r
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not unpacked (CI=true: scripts/deps.sh runs bench/fetch.sh, which unpacks %s)", bin, pkgs)
	}
	t.Skipf("%s is not unpacked: run bench/fetch.sh, or set %s to a root with %s unpacked", bin, env, pkgs)
	return ""
}
