package filtergen

import (
	"fmt"
	"sort"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/sys/unix"
)

// Assemble is the filter, ready for seccomp(2): the same decisions as
// AssembleLinear, laid out as a binary search over the system call
// numbers. The kernel runs the filter once for every call number when it
// loads it (to cache the calls it always allows), and a linear filter
// makes each of those runs, and each refused call, walk all of it: about
// 2 µs per instruction on the test VM. The tree's paths are about 20
// instructions.
func Assemble(exec bool) ([]unix.SockFilter, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	f := filter(exec)
	rules := map[int]*rule{}
	for _, g := range f.Policy.Syscalls {
		for _, name := range g.Names {
			nr, ok := info.SyscallNames[name]
			if !ok {
				return nil, fmt.Errorf("filtergen: unknown system call %s", name)
			}
			if rules[nr] == nil {
				rules[nr] = &rule{action: uint32(g.Action)}
			}
		}
		for _, nc := range g.NamesWithCondtions {
			nr, ok := info.SyscallNames[nc.Name]
			if !ok {
				return nil, fmt.Errorf("filtergen: unknown system call %s", nc.Name)
			}
			if len(nc.Conditions) != 1 || nc.Conditions[0].Argument != 0 || nc.Conditions[0].Value > 0xffffffff {
				return nil, fmt.Errorf("filtergen: %s: only one condition on the low word of the first argument is supported", nc.Name)
			}
			r := rules[nr]
			if r == nil {
				r = &rule{action: uint32(g.Action), cond: true}
				rules[nr] = r
			}
			if !r.cond {
				continue // an earlier group decided unconditionally
			}
			c := nc.Conditions[0]
			switch c.Operation {
			case seccomp.Equal:
				r.equal = append(r.equal, uint32(c.Value))
			case seccomp.BitsSet:
				r.bits = uint32(c.Value)
			default:
				return nil, fmt.Errorf("filtergen: %s: operation %s", nc.Name, c.Operation)
			}
		}
	}
	def := action(f.Policy.DefaultAction)
	// Runs of numbers with the same decision; a conditional call is a run
	// of its own.
	var nrs []int
	for nr := range rules {
		nrs = append(nrs, nr)
	}
	sort.Ints(nrs)
	var runs []run
	add := func(lo int, r *rule) {
		if n := len(runs); n > 0 && r != nil && !r.cond && runs[n-1].r != nil && !runs[n-1].r.cond && runs[n-1].r.action == r.action && runs[n-1].hi == lo-1 {
			runs[n-1].hi = lo
			return
		}
		if n := len(runs); n > 0 && r == nil && runs[n-1].r == nil && runs[n-1].hi == lo-1 {
			runs[n-1].hi = lo
			return
		}
		runs = append(runs, run{lo: lo, hi: lo, r: r})
	}
	next := 0
	for _, nr := range nrs {
		if nr > next {
			runs = append(runs, run{lo: next, hi: nr - 1}) // the default
		}
		add(nr, rules[nr])
		next = nr + 1
	}
	runs = append(runs, run{lo: next, hi: 1<<31 - 1})
	// merge adjacent default runs made by the gap rule
	var merged []run
	for _, r := range runs {
		if n := len(merged); n > 0 && r.r == nil && merged[n-1].r == nil {
			merged[n-1].hi = r.hi
			continue
		}
		merged = append(merged, r)
	}

	p := &prog{}
	p.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, 4) // arch
	p.emit(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, 1, 0, uint32(info.ID))
	p.emit(unix.BPF_RET|unix.BPF_K, 0, 0, def)
	p.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, 0) // nr
	if info.ID == arch.X86_64.ID {
		// The x32 ABI shares the arch value: refuse its numbers.
		p.emit(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0, 1, uint32(arch.X32.SeccompMask))
		p.emit(unix.BPF_RET|unix.BPF_K, 0, 0, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	}
	p.tree(merged, def)
	return p.out, p.err
}

type rule struct {
	action uint32
	cond   bool
	equal  []uint32 // allowed when the first argument is one of these
	bits   uint32   // or has these bits set
}

type run struct {
	lo, hi int
	r      *rule // nil: the default
}

func action(a seccomp.Action) uint32 {
	if a == seccomp.ActionErrno {
		return unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	}
	return uint32(a)
}

type prog struct {
	out []unix.SockFilter
	err error
}

func (p *prog) emit(code uint16, jt, jf uint8, k uint32) int {
	p.out = append(p.out, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
	return len(p.out) - 1
}

// tree emits a binary search over runs (sorted, contiguous): at each
// node "nr >= first number of the right half?", a long jump (ja) to the
// right half, the left half right after.
func (p *prog) tree(runs []run, def uint32) {
	if len(runs) == 1 {
		p.leaf(runs[0], def)
		return
	}
	mid := len(runs) / 2
	p.emit(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0, 1, uint32(runs[mid].lo))
	ja := p.emit(unix.BPF_JMP|unix.BPF_JA, 0, 0, 0)
	p.tree(runs[:mid], def)
	p.out[ja].K = uint32(len(p.out) - ja - 1)
	p.tree(runs[mid:], def)
}

// leaf decides for a run: a return, or the test of a conditional call's
// first argument (its low word: the arguments tested are ints).
func (p *prog) leaf(r run, def uint32) {
	switch {
	case r.r == nil:
		p.emit(unix.BPF_RET|unix.BPF_K, 0, 0, def)
	case !r.r.cond:
		p.emit(unix.BPF_RET|unix.BPF_K, 0, 0, r.r.action)
	default:
		p.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, 0, 0, 16) // args[0], low word (little-endian)
		// The compares, then "return the default", then "return the
		// action": each compare that matches jumps to the last.
		n, extra := len(r.r.equal), 0
		if r.r.bits != 0 {
			extra = 1
		}
		for i, v := range r.r.equal {
			p.emit(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint8(n-i+extra), 0, v)
		}
		if r.r.bits != 0 {
			p.emit(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, 1, 0, r.r.bits)
		}
		p.emit(unix.BPF_RET|unix.BPF_K, 0, 0, def)
		p.emit(unix.BPF_RET|unix.BPF_K, 0, 0, r.r.action)
	}
	if len(p.out) > unix.BPF_MAXINSNS {
		p.err = fmt.Errorf("filtergen: %d instructions, more than the kernel takes", len(p.out))
	}
}
