package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SocketActivateCmd is SocketActivate that also returns the launcher's
// process, so a test can find the smtp-bs it starts (Children).
func (e *Env) SocketActivateCmd(extraArgs ...string) (string, *exec.Cmd) {
	e.T.Helper()
	ssa := Need(e.T, "systemd-socket-activate")
	addr := FreePort(e.T)
	args := append([]string{"-l", addr, "--accept"}, extraArgs...)
	cmd := Start(e.T, ssa, append(args, Bin(e.T, "smtp-bs"), "-config", e.CfgFile)...)
	WaitListen(e.T, addr)
	return addr, cmd
}

// Children lists the pids of pid's live child processes (no zombies).
func Children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil && Alive(n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// WaitChild waits up to d for pid to have exactly one child and returns it.
func WaitChild(pid int, d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	for {
		if c := Children(pid); len(c) == 1 {
			return c[0], nil
		} else if time.Now().After(deadline) {
			return 0, fmt.Errorf("process %d has children %v, want one", pid, c)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Status returns a field of /proc/PID/status in bytes (for the kB fields
// such as VmHWM, the peak resident set) or as a number.
func Status(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			break
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, err
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// Alive reports whether pid still exists (and is not a zombie).
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
