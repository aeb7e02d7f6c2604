package mailbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RunProgram pipes a message to a program, the smrsh way: only a program
// that sits directly in dir may run, whatever path the alias wrote; it runs
// as the current user (mail) with a clean environment and a time limit.
// Exit 0 is delivered, 75 (EX_TEMPFAIL) and a timeout are temporary,
// anything else is permanent.
func RunProgram(ctx context.Context, dir, command string, env []string, msg io.Reader, timeout time.Duration) error {
	return RunProgramIn(ctx, nil, dir, command, env, msg, timeout)
}

// Wrapper turns a program's path and arguments (argv[0] first) into the
// command that runs it.
type Wrapper func(path string, argv []string) (string, []string)

// RunProgramIn is RunProgram with the program run through wrap (nil:
// directly).
func RunProgramIn(ctx context.Context, wrap Wrapper, dir, command string, env []string, msg io.Reader, timeout time.Duration) error {
	if dir == "" {
		return fmt.Errorf("5.7.1 program deliveries are not allowed ([local] program_dir is not set): |%s", command)
	}
	args := strings.Fields(command)
	if len(args) == 0 {
		return errors.New("5.1.3 empty program alias")
	}
	path := filepath.Join(dir, filepath.Base(args[0]))
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("5.7.1 program %s is not in the allowed directory %s", filepath.Base(args[0]), dir)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args[1:]...)
	if wrap != nil {
		cmd.Path, cmd.Args = wrap(path, append([]string{path}, args[1:]...))
	}
	cmd.Dir = "/"
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "SHELL=/bin/sh", "HOME=/", "LOGNAME=" + currentUser(), "USER=" + currentUser()}, env...)
	cmd.Stdin = msg
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 512}
	cmd.Stdout = io.Discard
	// The program's own children go too when it is stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err == nil {
		return nil
	}
	detail := strings.TrimSpace(stderr.String())
	if ctx.Err() == context.DeadlineExceeded {
		return temp("program %s timed out after %v", filepath.Base(path), timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code == 75 {
			return temp("program %s: temporary failure (exit 75) %s", filepath.Base(path), detail)
		}
		return fmt.Errorf("5.3.0 program %s failed (exit %d) %s", filepath.Base(path), code, detail)
	}
	return temp("program %s: %v", filepath.Base(path), err)
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "mail"
}

// limited keeps the first n bytes and discards the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
