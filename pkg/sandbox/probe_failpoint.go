//go:build failpoint

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smtp-bs/internal/failpoint"
)

// In failpoint builds the tests play an exploit right after Apply. The
// directory SMTPBS_SANDBOX_PROBE_DIR holds one file per process to probe,
// NAME.probe; each process that starts claims the first (removing it, so
// concurrent processes never share one) and runs its attempts, listed
// comma-separated, each OP:ARG:
//
//	read:PATH     open PATH for reading
//	write:PATH    create PATH (it must not exist)
//	exec:PATH     execve PATH
//	connect:PORT  TCP connect to 127.0.0.1:PORT
//	ptrace:PID    PTRACE_ATTACH to PID ("parent": the parent)
//
// The results go to NAME.out (opened before Apply, as nothing outside the
// policy could be afterwards): "OP:ARG try" before each attempt and
// "OP:ARG = RESULT" after, RESULT being "ok" or the errno's name, so a
// fatal attempt leaves a "try" and no result. A process that finds no
// file probes nothing. Either way it then goes on with its work.
var (
	probeSpec string
	probeOut  *os.File
)

// SMTPBS_SANDBOX_PRETEND plays an older kernel: "abi=N" offers Landlock
// ABI N at most (0: none), "noseccomp" no seccomp, comma-separated.
func pretendLevel(l Level) Level {
	for _, f := range strings.Split(os.Getenv("SMTPBS_SANDBOX_PRETEND"), ",") {
		switch {
		case f == "noseccomp":
			l.Seccomp, l.Missing = false, append(l.Missing, "seccomp: not offered by this kernel: no system call filter")
		case strings.HasPrefix(f, "abi="):
			if n, err := strconv.Atoi(f[4:]); err == nil && n < l.ABI {
				missing := l.Missing
				if n == 0 {
					l = landlockNone()
				} else {
					l = landlockAt(n)
				}
				for _, m := range missing {
					if strings.HasPrefix(m, "seccomp") {
						l.Missing = append(l.Missing, m)
					}
				}
				l.Seccomp = !containsPrefix(missing, "seccomp")
			}
		}
	}
	return l
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func init() {
	if os.Getenv("SMTPBS_SANDBOX_PRETEND") != "" {
		pretend = pretendLevel
	}
	beforeApply = func() {
		failpoint.Prepare()
		dir := os.Getenv("SMTPBS_SANDBOX_PROBE_DIR")
		if dir == "" {
			return
		}
		names, _ := filepath.Glob(filepath.Join(dir, "*.probe"))
		sort.Strings(names)
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil || os.Remove(n) != nil {
				continue // another process claimed it
			}
			probeSpec = strings.TrimSpace(string(b))
			probeOut, _ = os.OpenFile(strings.TrimSuffix(n, ".probe")+".out", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
			return
		}
	}
	afterApply = func(Policy) {
		if probeOut == nil {
			return
		}
		for _, a := range strings.Split(probeSpec, ",") {
			fmt.Fprintf(probeOut, "%s try\n", a)
			fmt.Fprintf(probeOut, "%s = %s\n", a, attempt(a))
		}
		probeOut.Close()
	}
}

func attempt(a string) string {
	op, arg, _ := strings.Cut(a, ":")
	var err error
	switch op {
	case "read":
		var f *os.File
		if f, err = os.Open(arg); err == nil {
			f.Close()
		}
	case "write":
		var f *os.File
		if f, err = os.OpenFile(arg, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
		}
	case "exec":
		err = syscall.Exec(arg, []string{arg, "-c", "echo escaped"}, nil)
	case "connect":
		var c net.Conn
		if c, err = net.DialTimeout("tcp", "127.0.0.1:"+arg, 2*time.Second); err == nil {
			c.Close()
		}
	case "ptrace":
		pid := os.Getppid()
		if arg != "parent" {
			pid, _ = strconv.Atoi(arg)
		}
		_, _, e := unix.Syscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, uintptr(pid), 0)
		if e != 0 {
			err = e
		}
	default:
		return "unknown-op"
	}
	var en syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &en):
		return unix.ErrnoName(en)
	}
	return err.Error()
}
