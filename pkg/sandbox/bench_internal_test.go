package sandbox

import (
	"testing"

	"smtp-bs/pkg/sandbox/internal/filtergen"
)

// BenchmarkAssemble is what building the session's filter would cost
// each process (filters_amd64.go spares it).
func BenchmarkAssemble(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := filtergen.Assemble(false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAvailable(b *testing.B) {
	for i := 0; i < b.N; i++ {
		Available()
	}
}
