package sandbox

import (
	"testing"

	"golang.org/x/net/bpf"
)

// BenchmarkAssemble is the seccomp half's CPU before the kernel sees it:
// building the session's filter.
func BenchmarkAssemble(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f := filterFor(Session)
		insts, err := f.Policy.Assemble()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bpf.Assemble(insts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAvailable(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Available()
	}
}
