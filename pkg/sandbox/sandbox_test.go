package sandbox_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/sandbox"
)

// The sandbox cannot be lifted, so each case runs in a child: this test
// binary again, with SANDBOX_HELPER naming the case. The child prints
// "name=result" lines; the parent checks them and how the child ended.

func TestMain(m *testing.M) {
	if c := os.Getenv("SANDBOX_HELPER"); c != "" {
		helper(c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func need(t *testing.T) sandbox.Level {
	t.Helper()
	l := sandbox.Available()
	if !l.Full() {
		testenv.Missing(t, fmt.Sprintf("this kernel cannot confine fully: %s (%v)", l, l.Missing), "a kernel with Landlock ABI 4+ and seccomp (not a Debian package)")
	}
	return l
}

type child struct {
	out    map[string]string
	status syscall.WaitStatus
}

func run(t *testing.T, name string, env ...string) child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "SANDBOX_HELPER="+name)...)
	b, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	c := child{out: map[string]string{}, status: cmd.ProcessState.Sys().(syscall.WaitStatus)}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			c.out[k] = v
		}
	}
	t.Logf("%s: %v %v", name, c.status, c.out)
	return c
}

// helperPolicy: read one dir, write another, connect to one port.
func helperPolicy() sandbox.Policy {
	port, _ := strconv.Atoi(os.Getenv("SANDBOX_PORT"))
	return sandbox.Policy{
		Profile: sandbox.Session,
		// /proc/self/task: the test reads each thread's seccomp mode.
		Read:       []string{os.Getenv("SANDBOX_RO"), "/proc/self/task"},
		Write:      []string{os.Getenv("SANDBOX_RW")},
		ConnectTCP: []uint16{uint16(port)},
		Required:   true,
	}
}

func errText(err error) string {
	var en syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &en):
		return unix.ErrnoName(en)
	}
	return err.Error()
}

func helper(name string) {
	// Threads started before the sandbox: the runtime's, plus some of
	// ours parked on their own OS threads.
	var park sync.WaitGroup
	release := make(chan struct{})
	tids := make(chan int, 4)
	for i := 0; i < 4; i++ {
		park.Add(1)
		go func() {
			defer park.Done()
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-release
			// Tried from this thread, which existed before Apply.
			_, err := os.ReadFile("/etc/passwd")
			fmt.Printf("thread%d_passwd=%s\n", i, errText(errors.Unwrap(err)))
		}()
	}
	for i := 0; i < 4; i++ {
		<-tids
	}
	l, err := sandbox.Apply(helperPolicy())
	if err != nil {
		fmt.Printf("apply=%v\n", err)
		os.Exit(3)
	}
	fmt.Printf("level=%s\n", l)
	close(release)
	park.Wait()
	switch name {
	case "files":
		ro, rw := os.Getenv("SANDBOX_RO"), os.Getenv("SANDBOX_RW")
		_, err := os.ReadFile(filepath.Join(ro, "f"))
		fmt.Printf("read_ro=%s\n", errText(errors.Unwrap(err)))
		err = os.WriteFile(filepath.Join(ro, "new"), nil, 0o600)
		fmt.Printf("write_ro=%s\n", errText(errors.Unwrap(err)))
		err = os.WriteFile(filepath.Join(rw, "tmp"), []byte("x"), 0o600)
		fmt.Printf("write_rw=%s\n", errText(errors.Unwrap(err)))
		os.Mkdir(filepath.Join(rw, "q"), 0o700)
		err = os.Link(filepath.Join(rw, "tmp"), filepath.Join(rw, "q", "id"))
		fmt.Printf("link_rw=%s\n", errText(errors.Unwrap(err)))
		_, err = os.ReadFile("/etc/passwd")
		fmt.Printf("passwd=%s\n", errText(errors.Unwrap(err)))
		err = os.WriteFile(filepath.Join(os.Getenv("SANDBOX_OUT"), "x"), nil, 0o600)
		fmt.Printf("write_out=%s\n", errText(errors.Unwrap(err)))
		// Threads made after Apply inherit the filter.
		var more sync.WaitGroup
		stop := make(chan struct{})
		for i := 0; i < 2; i++ {
			more.Add(1)
			go func() {
				runtime.LockOSThread()
				more.Done()
				<-stop
			}()
		}
		more.Wait()
		defer close(stop)
		// The status of every thread, old and new: all filtered.
		ents, _ := os.ReadDir("/proc/self/task")
		unfiltered := 0
		for _, e := range ents {
			b, _ := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
			if !strings.Contains(string(b), "Seccomp:\t2") {
				unfiltered++
			}
		}
		fmt.Printf("threads=%d\nunfiltered=%d\n", len(ents), unfiltered)
	case "net":
		port := os.Getenv("SANDBOX_PORT")
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if c != nil {
			c.Close()
		}
		fmt.Printf("connect_allowed=%s\n", errText(errors.Unwrap(errors.Unwrap(err))))
		_, err = net.Dial("tcp", "127.0.0.1:"+os.Getenv("SANDBOX_PORT2"))
		fmt.Printf("connect_other=%s\n", errText(errors.Unwrap(errors.Unwrap(err))))
		_, err = net.Listen("tcp", "127.0.0.1:0")
		fmt.Printf("listen=%s\n", errText(errors.Unwrap(errors.Unwrap(err))))
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 0)
		fmt.Printf("netlink=%d,%s\n", fd, errText(err))
		err = unix.Kill(os.Getppid(), 0)
		fmt.Printf("kill_parent=%s\n", errText(err))
		// A fork (clone without CLONE_THREAD) is refused, not fatal.
		_, _, e := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0)
		fmt.Printf("fork=%s\n", errText(e))
	case "exec":
		os.Stdout.Sync()
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", "echo escaped"}, nil)
		fmt.Printf("exec=%s\n", errText(err))
	case "ptrace":
		os.Stdout.Sync()
		_, _, e := unix.Syscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, uintptr(os.Getppid()), 0)
		fmt.Printf("ptrace=%s\n", errText(e))
	}
}

func dirs(t *testing.T) []string {
	ro, rw, out := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "f"), []byte("x"), 0o600)
	return []string{"SANDBOX_RO=" + ro, "SANDBOX_RW=" + rw, "SANDBOX_OUT=" + out}
}

func TestFilesAllThreads(t *testing.T) {
	need(t)
	env := dirs(t)
	c := run(t, "files", append(env, "SANDBOX_PORT=1")...)
	want := map[string]string{
		"read_ro": "ok", "write_ro": "EACCES", "write_rw": "ok", "link_rw": "ok",
		"passwd": "EACCES", "write_out": "EACCES", "unfiltered": "0",
	}
	for i := 0; i < 4; i++ {
		want[fmt.Sprintf("thread%d_passwd", i)] = "EACCES"
	}
	for k, v := range want {
		if c.out[k] != v {
			t.Errorf("%s = %q, want %q", k, c.out[k], v)
		}
	}
	if n, _ := strconv.Atoi(c.out["threads"]); n < 5 {
		t.Errorf("only %d threads: the test wants several", n)
	}
	if !strings.HasPrefix(c.out["level"], "landlock ABI ") || !strings.HasSuffix(c.out["level"], ": file system + network; seccomp: on") {
		t.Errorf("level %q", c.out["level"])
	}
	if out := filepath.Join(strings.TrimPrefix(env[2], "SANDBOX_OUT="), "x"); fileExists(out) {
		t.Error("a file was written outside the allowed tree")
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestNetwork(t *testing.T) {
	need(t)
	allowed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer allowed.Close()
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	c := run(t, "net", append(dirs(t), "SANDBOX_PORT="+port(allowed), "SANDBOX_PORT2="+port(other))...)
	for k, v := range map[string]string{
		"connect_allowed": "ok", "connect_other": "EACCES", "listen": "EPERM",
		"netlink": "-1,EPERM", "kill_parent": "EPERM", "fork": "EPERM",
	} {
		if c.out[k] != v {
			t.Errorf("%s = %q, want %q", k, c.out[k], v)
		}
	}
}

// Exec and ptrace are the attack's calls: the process dies by SIGSYS at
// once, and nothing after them runs (fork gets EPERM: TestNetwork).
func TestFatalCalls(t *testing.T) {
	need(t)
	for _, name := range []string{"exec", "ptrace"} {
		t.Run(name, func(t *testing.T) {
			c := run(t, name, append(dirs(t), "SANDBOX_PORT=1")...)
			if !c.status.Signaled() || c.status.Signal() != syscall.SIGSYS {
				t.Errorf("child ended with %v, want death by SIGSYS", c.status)
			}
			if r, ok := c.out[name]; ok {
				t.Errorf("the call returned (%s): the process was not killed", r)
			}
			if c.out["level"] == "" {
				t.Error("the sandbox was not applied")
			}
		})
	}
}

func TestLevelString(t *testing.T) {
	for _, c := range []struct {
		l    sandbox.Level
		want string
	}{
		{sandbox.Level{ABI: 7, FS: true, Net: true, Seccomp: true}, "landlock ABI 7: file system + network; seccomp: on"},
		{sandbox.Level{ABI: 3, FS: true, Seccomp: true}, "landlock ABI 3: file system only; seccomp: on"},
		{sandbox.Level{}, "landlock: off; seccomp: off"},
	} {
		if got := c.l.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.l, got, c.want)
		}
		if c.l.Full() != (c.want == "landlock ABI 7: file system + network; seccomp: on") {
			t.Errorf("%+v: Full() = %v", c.l, c.l.Full())
		}
	}
}
