// Package sandbox confines the calling process, whatever started it
// (xinetd, tcpserver, inetd, cron, systemd): a Landlock ruleset limits the
// files it may touch and the TCP ports it may connect to, and a seccomp
// filter limits the system calls it may make. Both are unprivileged (under
// no_new_privs), apply to every thread of the process, are inherited by
// every child and can never be lifted: a bug exploited after Apply
// cannot read, write, execute or connect beyond the Policy.
//
// The seccomp filter is loaded first, then Landlock (its calls are on
// the allow-list: a Landlock layer only ever narrows). On a kernel that
// lacks either, or offers an older Landlock ABI, Apply enforces what
// there is and says what is missing in the Level it returns; with
// Policy.Required it enforces nothing and returns an error instead of
// running half-confined.
//
// What a system call outside the allow-list gets: EPERM, except the few
// that only an attack makes (execve where the profile forbids it, ptrace,
// process_vm_*, bpf, mount, module loading, kexec, keyctl, ...), which
// kill the process. EPERM keeps a Go runtime or library path we did not
// foresee an error the session reports (451, the client retries; the
// spool loses nothing) rather than a crash of every session; the kill
// gives an exploit no second try and leaves a SIGSYS in the kernel's log.
package sandbox

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Profile names the seccomp allow-list: what kind of process it is.
type Profile int

const (
	// Session is one smtp-bs session: files, sockets, the Go runtime;
	// no exec, no fork.
	Session Profile = iota
	// Runner is qrun: the session's set, plus fork, exec and wait for
	// the local delivery programs.
	Runner
	// Submit is the sendmail front: as Session.
	Submit
	// Program is what qrun's delivery programs inherit: Runner's set
	// (a program is any program: a shell, a C binary), confined further
	// by its own Landlock layer.
	Program
)

func (p Profile) String() string {
	switch p {
	case Session:
		return "session"
	case Runner:
		return "runner"
	case Submit:
		return "submit"
	case Program:
		return "program"
	}
	return fmt.Sprintf("profile(%d)", int(p))
}

// Policy is what a process may still do once confined. Paths that do not
// exist are skipped (an unset aliases file is no error); every other
// path is out of reach, for reading too.
type Policy struct {
	Profile Profile
	// Read are files and directory trees the process may read.
	Read []string
	// Write are directory trees it may read, create in, write and remove
	// in, and link or rename between (the spool's commit is a link from
	// tmp/ to queue/).
	Write []string
	// WriteFiles are single files it may read and write (an mbox, the
	// log file when the log is a file).
	WriteFiles []string
	// Exec are files and trees it may read and execute. Nothing else
	// may be executed.
	Exec []string
	// ConnectTCP are the TCP ports it may connect to; none when empty,
	// unless AnyTCP.
	ConnectTCP []uint16
	// AnyTCP lets it connect to any TCP port (qrun's delivery goes to
	// whatever port an MX, a route or a smarthost names). Binding is
	// refused either way.
	AnyTCP bool
	// Required: refuse (enforce nothing, return an error) unless Landlock
	// with file system and network rules and the seccomp filter are all
	// in force.
	Required bool
}

// Level is what is in force.
type Level struct {
	// ABI is the Landlock ABI version used; 0: no Landlock.
	ABI int
	// FS and Net: Landlock's file system rules (ABI 1) and TCP rules
	// (ABI 4) are enforced.
	FS, Net bool
	// Seccomp: the system call filter is in force.
	Seccomp bool
	// Missing says, one phrase each, what is not enforced and why.
	Missing []string
}

// Full reports whether everything Policy.Required asks for is in force.
func (l Level) Full() bool { return l.FS && l.Net && l.Seccomp }

// String is the one-line account -check and the log give:
// "landlock ABI 7: file system + network; seccomp: on".
func (l Level) String() string {
	var b strings.Builder
	switch {
	case l.ABI == 0:
		b.WriteString("landlock: off")
	case l.FS && l.Net:
		fmt.Fprintf(&b, "landlock ABI %d: file system + network", l.ABI)
	case l.FS:
		fmt.Fprintf(&b, "landlock ABI %d: file system only", l.ABI)
	default:
		fmt.Fprintf(&b, "landlock ABI %d: nothing", l.ABI)
	}
	if l.Seccomp {
		b.WriteString("; seccomp: on")
	} else {
		b.WriteString("; seccomp: off")
	}
	return b.String()
}

// ErrIncomplete is returned by Apply under Policy.Required when the
// kernel cannot enforce everything.
var ErrIncomplete = errors.New("sandbox: full confinement required but not available")

// Available is what Apply would enforce on this kernel, without
// enforcing anything: for -check.
func Available() Level {
	l := landlockLevel()
	l.Seccomp, l.Missing = seccompSupported(l.Missing)
	if pretend != nil {
		l = pretend(l)
	}
	return l
}

// pretend is set in failpoint builds: the tests' way to play an older
// kernel (probe_failpoint.go).
var pretend func(Level) Level

// Demand is what this kernel offers, and ErrIncomplete when required
// and it is not full confinement: what Apply checks first, for a caller
// that must know before it goes on (smtp-bs, before its greeting).
func Demand(required bool) (Level, error) {
	avail := Available()
	if required && !avail.Full() {
		return avail, fmt.Errorf("%w: %s (%s)", ErrIncomplete, avail, strings.Join(avail.Missing, "; "))
	}
	return avail, nil
}

// Apply confines the calling process (all its threads) to p, and returns
// what is in force. An error means nothing more than Landlock (when it
// was applied) is in force and the caller must not go on: under Required
// that is ErrIncomplete before anything is applied.
func Apply(p Policy) (Level, error) {
	avail, err := Demand(p.Required)
	if err != nil {
		return avail, err
	}
	l := Level{Missing: avail.Missing}
	if beforeApply != nil {
		beforeApply()
	}
	// seccomp first: loaded with TSYNC it sets no_new_privs on every
	// thread, which Landlock then needs, so that Landlock's own
	// all-threads call is the only one (each stops every thread).
	if avail.Seccomp {
		// A program inherits the runner's filter, which allows what any
		// program may need: a second copy would add nothing.
		if p.Profile != Program {
			if err := loadSeccomp(p.Profile); err != nil {
				return l, fmt.Errorf("sandbox: seccomp: %w", err)
			}
		}
		l.Seccomp = true
	}
	if avail.ABI > 0 {
		// A program's wrapper inherited no_new_privs from qrun (it
		// survives execve, and every thread it starts has it too).
		nnp := (avail.Seccomp && p.Profile != Program) || noNewPrivs()
		if err := restrictLandlock(p, avail, nnp); err != nil {
			return l, fmt.Errorf("sandbox: landlock: %w", err)
		}
		l.ABI, l.FS, l.Net = avail.ABI, avail.FS, avail.Net
	}
	if afterApply != nil {
		afterApply(p)
	}
	return l, nil
}

// beforeApply and afterApply are set in failpoint builds (probe_failpoint.go): the point
// where the tests play an exploit inside the freshly confined process.
var (
	beforeApply func()
	afterApply  func(Policy)
)

// noNewPrivs reports whether no_new_privs is already set.
func noNewPrivs() bool {
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	return err == nil && v == 1
}
