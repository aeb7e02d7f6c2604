// Package filtergen builds the seccomp filters of pkg/sandbox from its
// allow-lists with go-seccomp-bpf. It is apart so that the programs do not
// link go-seccomp-bpf, whose syscall tables cost every process about a
// millisecond and 160 KB to initialise: on amd64 they load the filters
// prebuilt from these lists (pkg/sandbox/filters_amd64.go, which a test
// holds to them); elsewhere they build them here.
package filtergen

import (
	seccomp "github.com/elastic/go-seccomp-bpf"
	xbpf "golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// PIDPlaceholder stands for the process's pid in the filter (kill(2) of
// itself only): pkg/sandbox writes the pid over it when it loads the
// filter. No pid reaches it (pid_max is at most 2^22).
const PIDPlaceholder = 0x7eadbeef

// The allow-lists come from what the processes were seen to call
// (strace -f -c of real sessions: plain, STARTTLS, AUTH, milter, a local
// pipe; qrun passes delivering by SMTP, LMTP, mbox, Maildir and a
// program; sendmail submissions), plus the Go runtime's own calls that a
// short trace may miss (a new M, a GC under memory pressure, preemption
// signals). The filter is a binary search over call numbers (tree.go),
// so the order of the lists does not matter to its speed.

// hot are the calls made for every few bytes a session moves.
var hot = []string{
	"read", "write", "futex", "epoll_pwait", "epoll_wait", "epoll_pwait2",
	"nanosleep", "sched_yield", "rt_sigreturn", "getrandom",
	"clock_gettime", "clock_nanosleep", "gettimeofday", "tgkill", "getpid", "gettid",
	// tkill: libpsx (a cgo build: the tests) signals each thread with it;
	// Landlock (ABI 6) scopes signals to our own domain.
	"tkill",
}

// goRuntime are the Go runtime's other calls: memory, threads, signals,
// the netpoller, timers, and its start-up reads.
var goRuntime = []string{
	"mmap", "munmap", "madvise", "mprotect", "mremap", "mincore", "brk",
	"rt_sigaction", "rt_sigprocmask", "sigaltstack", "rt_sigsuspend",
	"exit", "exit_group", "restart_syscall",
	"epoll_create1", "epoll_ctl", "eventfd2", "pipe2",
	"sched_getaffinity", "getrlimit", "prlimit64", "uname", "getcpu",
	"setitimer", "timer_create", "timer_settime", "timer_delete",
	"membarrier", "rseq", "set_robust_list",
	"getuid", "geteuid", "getgid", "getegid", "getgroups", "getppid", "getpgrp",
	"capget", "umask",
	// Landlock is applied after the filter (sandbox.go says why), and a
	// Landlock layer only ever narrows.
	"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
}

// files are the file calls: the spool's create, write, fsync, link and
// rename, its directory scans, statfs for the free-space reserve. Landlock
// decides which paths they reach.
var files = []string{
	"openat", "open", "close", "close_range", "fstat", "newfstatat", "stat", "lstat", "statx",
	"lseek", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
	"fcntl", "dup", "dup2", "dup3", "ioctl", "flock",
	"fsync", "fdatasync", "sync_file_range", "ftruncate", "fallocate",
	"linkat", "link", "renameat", "renameat2", "rename", "unlinkat", "unlink",
	"mkdirat", "mkdir", "rmdir", "getdents64", "readlinkat", "readlink",
	"statfs", "fstatfs", "faccessat", "faccessat2", "access", "getcwd", "chdir", "fchdir",
	"fchmod", "fchmodat", "utimensat", "futimesat", "fadvise64",
	// io.Copy between descriptors: the Go runtime tries these first.
	"sendfile", "splice", "tee", "copy_file_range",
}

// network are the socket calls, for the connection we were handed, the
// milters, the log socket, DNS and delivery. socket itself is allowed
// only for AF_UNIX, AF_INET and AF_INET6 (no netlink, no packet, no
// raw-by-family tricks); bind only where the profile needs it.
var network = []string{
	"connect", "getsockname", "getpeername", "getsockopt", "setsockopt",
	"sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown", "socketpair",
	"poll", "ppoll", "select", "pselect6",
}

// process are qrun's calls to run delivery programs and wait for them.
var process = []string{
	"clone3", "vfork", "fork", "execve", "wait4", "waitid", "kill",
	"pidfd_open", "pidfd_send_signal", "setpgid", "setsid", "getpgid", "getsid",
	"prctl", "setrlimit", "bind", "listen", "accept", "accept4",
	"chmod", "fchown", "fchownat", "lchown", "chown", "symlinkat", "symlink",
	"sysinfo", "times", "getrusage", "alarm", "pause", "getitimer",
	"arch_prctl", "set_tid_address", "setresuid", "setresgid", "getresuid", "getresgid",
	"sched_setaffinity", "sched_getparam", "sched_getscheduler", "ioprio_get",
	"memfd_create", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	"timerfd_create", "timerfd_settime", "timerfd_gettime", "signalfd4",
	"mknodat", "utime", "utimes",
	"fgetxattr", "getxattr", "lgetxattr", "flistxattr", "listxattr", "llistxattr",
	"sched_get_priority_max", "sched_get_priority_min", "getpriority", "setpriority",
	// A program may add filters of its own: they only ever narrow.
	"seccomp",
}

// fatal are the calls only an attack makes: the process is killed at
// the first, with no chance of a second try.
var fatal = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
	"bpf", "perf_event_open", "userfaultfd", "kcmp",
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
	"mount_setattr", "setns", "unshare",
	"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
	"keyctl", "add_key", "request_key", "reboot", "swapon", "swapoff", "acct", "quotactl",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "personality", "open_by_handle_at", "name_to_handle_at",
	"io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
	"lookup_dcookie", "vhangup", "syslog", "uselib", "sethostname", "setdomainname",
}

// fatalExec are added to fatal where nothing may be executed.
var fatalExec = []string{"execve", "execveat"}

// filter is the policy: exec for qrun and its programs (fork, exec, wait
// allowed), else a session's or the sendmail command's.
func filter(exec bool) seccomp.Filter {
	allow := [][]string{hot, goRuntime, files, network}
	kill := fatal
	var cond []seccomp.NameWithConditions
	for _, af := range []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6} {
		cond = append(cond, seccomp.NameWithConditions{Name: "socket",
			Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: af}}})
	}
	if exec {
		allow = append(allow, process)
	} else {
		kill = append(append([]string(nil), fatal...), fatalExec...)
		// kill(2) only of ourselves: the runtime's raiseproc (a crash
		// report's final signal) and the crash tests' failpoints.
		cond = append(cond, seccomp.NameWithConditions{Name: "kill",
			Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: PIDPlaceholder}}})
		// A new thread, never a new process: the runtime's clone of an M
		// always carries CLONE_THREAD; a fork would not.
		cond = append(cond, seccomp.NameWithConditions{Name: "clone",
			Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.BitsSet, Value: unix.CLONE_THREAD}}})
		// prctl only to name memory mappings, as the runtime does for
		// the heap it maps (a refusal would be ignored; this keeps the
		// log of refusals empty).
		cond = append(cond, seccomp.NameWithConditions{Name: "prctl",
			Conditions: seccomp.ArgumentConditions{{Argument: 0, Operation: seccomp.Equal, Value: unix.PR_SET_VMA}}})
	}
	var names []string
	for _, l := range allow {
		names = append(names, l...)
	}
	groups := []seccomp.SyscallGroup{
		{Action: seccomp.ActionAllow, Names: names},
		{Action: seccomp.ActionAllow, NamesWithCondtions: conditionsOnly(cond)},
		{Action: seccomp.ActionKillProcess, Names: kill},
	}
	if !exec {
		// clone3 cannot be filtered by its flags (they are in memory):
		// ENOSYS, on which glibc's pthread_create (a cgo build, the
		// tests') falls back to clone, which can.
		groups = append(groups, seccomp.SyscallGroup{Action: seccomp.Action(unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)), Names: []string{"clone3"}})
	}
	if exec {
		// clone is unconditional here: it goes in the plain list.
		groups[0].Names = append(groups[0].Names, "clone")
	}
	return seccomp.Filter{
		NoNewPrivs: true,
		// TSYNC: every thread the runtime has started gets the filter,
		// not only the one that loads it.
		Flag:   seccomp.FilterFlagTSync,
		Policy: seccomp.Policy{DefaultAction: seccomp.ActionErrno, Syscalls: groups},
	}
}

// conditionsOnly drops the unconditional entries (they live in the plain
// list, since the library refuses a name both with and without
// conditions).
func conditionsOnly(c []seccomp.NameWithConditions) []seccomp.NameWithConditions {
	var out []seccomp.NameWithConditions
	for _, n := range c {
		if len(n.Conditions) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// AssembleLinear is the filter as go-seccomp-bpf assembles it: one
// compare per listed call, in order. The tests hold Assemble's tree to
// it.
func AssembleLinear(exec bool) ([]unix.SockFilter, error) {
	f := filter(exec)
	insts, err := f.Policy.Assemble()
	if err != nil {
		return nil, err
	}
	raw, err := xbpf.Assemble(insts)
	if err != nil {
		return nil, err
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}
