package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procTable holds every process this benchmark started and has not
// reaped, so that cleanup can stop each by its PID.
type procTable struct {
	mu sync.Mutex
	m  map[int]*exec.Cmd
}

func (t *procTable) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return err
	}
	t.mu.Lock()
	if t.m == nil {
		t.m = map[int]*exec.Cmd{}
	}
	t.m[cmd.Process.Pid] = cmd
	t.mu.Unlock()
	return nil
}

func (t *procTable) wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	t.mu.Lock()
	delete(t.m, cmd.Process.Pid)
	t.mu.Unlock()
	return err
}

func (t *procTable) run(cmd *exec.Cmd) error {
	if err := t.start(cmd); err != nil {
		return err
	}
	return t.wait(cmd)
}

// stopAll ends what is still running: SIGTERM, then SIGKILL, by PID.
func (t *procTable) stopAll() {
	t.mu.Lock()
	cmds := make([]*exec.Cmd, 0, len(t.m))
	for _, c := range t.m {
		cmds = append(cmds, c)
	}
	t.mu.Unlock()
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { t.wait(c); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// usage is what wait4 reports for a process and every descendant it
// reaped: CPU time summed, peak RSS the largest of any one of them.
type usage struct {
	cpu    time.Duration
	maxRSS int64 // KiB
}

func usageOf(ps *os.ProcessState) usage {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return usage{}
	}
	return usage{
		cpu:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		maxRSS: ru.Maxrss,
	}
}

// children lists the PIDs of pid's children.
func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// waitNoChildren waits until pid has no children (every session handler
// has exited and been reaped by the launcher).
func waitNoChildren(pid int, limit time.Duration) error {
	end := time.Now().Add(limit)
	for len(children(pid)) > 0 {
		if time.Now().After(end) {
			return fmt.Errorf("pid %d still has children %v after %v", pid, children(pid), limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// waitListening polls /proc/net/tcp (this namespace's) until 127.0.0.1:port
// is in LISTEN state. Connecting to find out would start a handler.
func waitListening(port int, limit time.Duration) error {
	want := fmt.Sprintf("0100007F:%04X", port)
	end := time.Now().Add(limit)
	for {
		f, err := os.Open("/proc/net/tcp")
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 3 && fs[1] == want && fs[3] == "0A" {
				f.Close()
				return nil
			}
		}
		f.Close()
		if time.Now().After(end) {
			return fmt.Errorf("nothing listens on 127.0.0.1:%d after %v", port, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// launcher is one tcpserver serving one handler. It runs under GNU time,
// which only reports its peak RSS: a child that Go starts (vfork, then
// exec) inherits the Go parent's RSS high-water mark as its own
// ru_maxrss, so tcpserver started straight from here would claim this
// program's RSS. time forks it properly. CPU comes from wait4 on time,
// which covers time (a fraction of a millisecond), tcpserver and every
// handler tcpserver reaped.
type launcher struct {
	cmd     *exec.Cmd // /usr/bin/time
	ts      int       // tcpserver's PID
	port    int
	rssFile string
	errLog  *lineLog
}

func (b *bench) startLauncher(h *handler) (*launcher, error) {
	port := b.port()
	rssFile := filepath.Join(h.dir, "launcher.rss")
	os.Remove(rssFile)
	args := []string{"-f", "%M", "-o", rssFile, "tcpserver", "-R", "-H", "-l0", "-c", "200", "-b", "256"}
	if h.user != "" {
		args = append(args, "-u", strconv.Itoa(h.uid), "-g", strconv.Itoa(h.gid))
	}
	args = append(args, "127.0.0.1", strconv.Itoa(port))
	args = append(args, h.argv...)
	cmd := exec.Command("/usr/bin/time", args...)
	cmd.Env = append(baseEnv(), h.env...)
	// stderr is a pipe, as under a supervisor that collects it: the
	// handlers then log to syslog as they would in production, not to a
	// file they take for an admin's terminal.
	el, err := newLineLog(filepath.Join(h.dir, "launcher.err"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = el, el
	if err := b.procs.start(cmd); err != nil {
		return nil, err
	}
	l := &launcher{cmd: cmd, port: port, rssFile: rssFile, errLog: el}
	for end := time.Now().Add(5 * time.Second); l.ts == 0 && time.Now().Before(end); time.Sleep(time.Millisecond) {
		if c := children(cmd.Process.Pid); len(c) > 0 {
			l.ts = c[0]
		}
	}
	if l.ts == 0 {
		l.kill(b)
		return nil, errors.New("tcpserver did not start")
	}
	if err := waitListening(port, 5*time.Second); err != nil {
		l.kill(b)
		return nil, err
	}
	return l, nil
}

func (l *launcher) addr() string { return fmt.Sprintf("127.0.0.1:%d", l.port) }

// stop waits for the running sessions to end, stops tcpserver and returns
// the usage of tcpserver and every handler it reaped.
func (l *launcher) stop(b *bench) (usage, error) {
	werr := waitNoChildren(l.ts, 60*time.Second)
	syscall.Kill(l.ts, syscall.SIGTERM)
	b.procs.wait(l.cmd)
	l.errLog.f.Close()
	if l.cmd.ProcessState == nil {
		return usage{}, errors.New("tcpserver: no exit status")
	}
	u := usageOf(l.cmd.ProcessState)
	u.maxRSS = 0
	if m, err := os.ReadFile(l.rssFile); err == nil {
		lines := strings.Fields(string(m))
		if len(lines) > 0 {
			u.maxRSS, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
		}
	}
	return u, werr
}

func (l *launcher) kill(b *bench) {
	if l.ts != 0 {
		syscall.Kill(l.ts, syscall.SIGTERM)
	} else {
		l.cmd.Process.Signal(syscall.SIGTERM)
	}
	b.procs.wait(l.cmd)
	l.errLog.f.Close()
}

// lineLog appends what a launcher writes to a file. Being no *os.File,
// it makes exec give the child a pipe.
type lineLog struct {
	mu sync.Mutex
	f  *os.File
}

func newLineLog(path string) (*lineLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &lineLog{f: f}, nil
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

func baseEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
}

// greet connects, times the 220 greeting, says QUIT and reads the reply.
func greet(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("greeting: %w", err)
		}
		if !strings.HasPrefix(line, "220") {
			return 0, fmt.Errorf("greeting: %q", strings.TrimSpace(line))
		}
		if len(line) < 4 || line[3] != '-' {
			break
		}
	}
	d := time.Since(t0)
	c.Write([]byte("QUIT\r\n"))
	r.ReadString('\n')
	return d, nil
}
