package filtergen

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/elastic/go-seccomp-bpf/arch"
)

// decide is what a filter decides for one call: it is run on seccomp_data
// as the kernel lays it out, with each 32-bit word stored big-endian,
// since x/net/bpf's machine loads words in network order.
func decide(t *testing.T, prog []unix.SockFilter, archID uint32, nr int, arg0 uint64) uint32 {
	t.Helper()
	var insts []bpf.Instruction
	for _, f := range prog {
		insts = append(insts, bpf.RawInstruction{Op: f.Code, Jt: f.Jt, Jf: f.Jf, K: f.K}.Disassemble())
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], uint32(nr))
	binary.BigEndian.PutUint32(data[4:], archID)
	binary.BigEndian.PutUint32(data[16:], uint32(arg0))     // args[0], low word
	binary.BigEndian.PutUint32(data[20:], uint32(arg0>>32)) // and high word
	v, err := vm.Run(data)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v)
}

// The tree decides every call as the linear filter does: every number,
// the arguments the conditions test and some they do not, a foreign
// architecture and the x32 numbers.
func TestTreeMatchesLinear(t *testing.T) {
	args := []uint64{0, 1, 2, 10, 16, 17, unix.CLONE_THREAD, unix.CLONE_THREAD | unix.CLONE_VM, uint64(unix.SIGCHLD),
		PIDPlaceholder, PIDPlaceholder + 1, unix.PR_SET_VMA, unix.PR_SET_NO_NEW_PRIVS}
	for _, exec := range []bool{false, true} {
		tree, err := Assemble(exec)
		if err != nil {
			t.Fatal(err)
		}
		lin, err := AssembleLinear(exec)
		if err != nil {
			t.Fatal(err)
		}
		if len(tree) > len(lin)*3 {
			t.Errorf("exec=%v: the tree has %d instructions, the linear filter %d", exec, len(tree), len(lin))
		}
		differ := 0
		for _, id := range []uint32{uint32(arch.X86_64.ID), uint32(arch.I386.ID)} {
			for nr := 0; nr < 1024; nr++ {
				for _, a := range args {
					if got, want := decide(t, tree, id, nr, a), decide(t, lin, id, nr, a); got != want && differ < 10 {
						differ++
						t.Errorf("exec=%v arch=%#x nr=%d arg0=%#x: tree %#x, linear %#x", exec, id, nr, a, got, want)
					}
				}
			}
			for _, nr := range []int{0x40000000, 0x40000001, 0x7fffffff} {
				if got, want := decide(t, tree, id, nr, 0), decide(t, lin, id, nr, 0); got != want {
					t.Errorf("exec=%v nr=%#x: tree %#x, linear %#x", exec, nr, got, want)
				}
			}
		}
		// Some decisions by name, so that both cannot be wrong alike.
		for _, c := range []struct {
			nr   int
			arg  uint64
			want uint32
		}{
			{unix.SYS_READ, 0, unix.SECCOMP_RET_ALLOW},
			{unix.SYS_PTRACE, 0, unix.SECCOMP_RET_KILL_PROCESS},
			{unix.SYS_SOCKET, unix.AF_INET6, unix.SECCOMP_RET_ALLOW},
			{unix.SYS_SOCKET, unix.AF_NETLINK, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
			{unix.SYS_REBOOT, 0, unix.SECCOMP_RET_KILL_PROCESS},
		} {
			if got := decide(t, tree, uint32(arch.X86_64.ID), c.nr, c.arg); got != c.want {
				t.Errorf("exec=%v nr=%d arg0=%#x: %#x, want %#x", exec, c.nr, c.arg, got, c.want)
			}
		}
		t.Logf("exec=%v: tree %d instructions, linear %d", exec, len(tree), len(lin))
	}
}
