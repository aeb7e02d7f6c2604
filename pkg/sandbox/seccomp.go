package sandbox

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a process may make: the lists, and why each call is
// there, are in internal/filtergen; kill, not EPERM, for the few that
// only an attack makes (package doc).

// pidPlaceholder stands for our pid in the filter (kill(2) of ourselves
// only): the filter is built once, and each process writes its own pid
// over it when it loads the filter.
const pidPlaceholder = 0x7eadbeef // filtergen.PIDPlaceholder

// seccompProgram is the filter for p with pid in place of the
// placeholder: the prebuilt copy where there is one (filters_amd64.go),
// which saves assembling it in every process (about a millisecond of CPU
// when the process is fresh), else assembled now.
func seccompProgram(p Profile, pid int) ([]unix.SockFilter, error) {
	prog := prebuilt(p)
	if prog == nil {
		raw, err := assemble(p) // filters_other.go
		if err != nil {
			return nil, err
		}
		prog = raw
	} else {
		prog = append([]unix.SockFilter(nil), prog...)
	}
	for i := range prog {
		if prog[i].K == pidPlaceholder && prog[i].Code == jeqK {
			prog[i].K = uint32(pid)
		}
	}
	return prog, nil
}

func seccompSupported(missing []string) (bool, []string) {
	// Mode strict with flags 1 is invalid: EINVAL means seccomp is there.
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_STRICT, 1, 0); e != unix.EINVAL {
		return false, append(missing, "seccomp: not offered by this kernel: no system call filter")
	}
	return true, missing
}

// loadSeccomp loads p's filter on every thread (TSYNC): the runtime's
// threads already started get it too, and no_new_privs with it.
func loadSeccomp(p Profile) error {
	prog, err := seccompProgram(p, os.Getpid())
	if err != nil {
		return fmt.Errorf("%s profile: %w", p, err)
	}
	// no_new_privs is a thread's: the filter must be loaded from the thread
	// that set it, and the scheduler may move a goroutine between any two
	// system calls (it did, under strace, where each call is slow: the
	// load then failed with EACCES).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("%s profile: %w", p, e)
	}
	if r != 0 {
		return fmt.Errorf("%s profile: thread %d could not be synchronised", p, r)
	}
	return nil
}

// jeqK is BPF_JMP|BPF_JEQ|BPF_K, the compare a condition on an argument
// assembles to.
const jeqK = 0x15
