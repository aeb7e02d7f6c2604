//go:build !amd64

package sandbox

import (
	"golang.org/x/sys/unix"

	"smtp-bs/pkg/sandbox/internal/filtergen"
)

// prebuilt has no tables for this architecture: filters are assembled
// when loaded.
func prebuilt(Profile) []unix.SockFilter { return nil }

func assemble(p Profile) ([]unix.SockFilter, error) {
	return filtergen.Assemble(p == Runner || p == Program)
}
