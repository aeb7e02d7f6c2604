// Package failpoint kills the process at a chosen call, so the crash
// tests can stop smtp-bs and qrun at an exact point of their work. It is
// linked only into binaries built with the "failpoint" build tag (see
// pkg/spool/failpoint.go); a normal build never reads its variables.
//
// SMTPBS_FAILPOINT=OP:N[:after] kills the process (SIGKILL, as kill -9)
// at the Nth call of OP, before the call is made, or right after it
// returns with ":after". OP is a full name such as "spool.fsync" or a
// prefix such as "spool" (any spool call). SMTPBS_FAILPOINT_TRACE=FILE
// appends the name of every call to FILE, one per line, so a test can
// count the points of a clean run.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var (
	mu     sync.Mutex
	op     string
	nth    int
	after  bool
	count  int
	trace  *os.File
	tpath  string
	parsed bool
)

func setup() {
	parsed = true
	tpath = os.Getenv("SMTPBS_FAILPOINT_TRACE")
	spec := os.Getenv("SMTPBS_FAILPOINT")
	if spec == "" {
		return
	}
	f := strings.Split(spec, ":")
	if len(f) < 2 {
		return
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 {
		return
	}
	op, nth, after = f[0], n, len(f) > 2 && f[2] == "after"
}

// Call marks the start of a call named name and returns what to call when
// it has returned.
func Call(name string) (done func()) {
	mu.Lock()
	defer mu.Unlock()
	if !parsed {
		setup()
	}
	if tpath != "" {
		if trace == nil {
			trace, _ = os.OpenFile(tpath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
		}
		if trace != nil {
			trace.WriteString(name + "\n")
		}
	}
	if nth == 0 || !(name == op || strings.HasPrefix(name, op+".")) {
		return func() {}
	}
	count++
	if count != nth {
		return func() {}
	}
	if !after {
		kill()
	}
	return kill
}

func kill() {
	syscall.Kill(syscall.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL cannot be caught; wait for it to land
}

// Prepare opens the trace file now, while its path is in reach: the
// sandbox (pkg/sandbox) leaves only the spool writable afterwards.
func Prepare() {
	mu.Lock()
	defer mu.Unlock()
	if !parsed {
		setup()
	}
	if tpath != "" && trace == nil {
		trace, _ = os.OpenFile(tpath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	}
}
