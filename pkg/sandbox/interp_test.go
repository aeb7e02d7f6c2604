package sandbox

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"testing"
)

// debugELFInterp is debug/elf's answer, the oracle for elfInterp.
func debugELFInterp(b []byte) string {
	ef, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			if p.Filesz > 4096 { // elfInterp's bound: debug/elf has none
				return ""
			}
			v := make([]byte, p.Filesz)
			if _, err := p.ReadAt(v, 0); err == nil {
				return string(bytes.TrimRight(v, "\x00"))
			}
		}
	}
	return ""
}

// The system's own programs, dynamic and static, read as debug/elf reads
// them.
func TestELFInterpMatchesDebugELF(t *testing.T) {
	dynamic := 0
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"} {
		ents, _ := os.ReadDir(dir)
		for i, e := range ents {
			if i > 150 || !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil || len(b) > 64<<20 {
				continue
			}
			got, want := elfInterp(bytes.NewReader(b)), debugELFInterp(b)
			if got != want {
				t.Errorf("%s: %q, debug/elf says %q", e.Name(), got, want)
			}
			if want != "" {
				dynamic++
			}
		}
	}
	if dynamic == 0 {
		t.Fatal("no dynamic ELF binary found to compare")
	}
	exe, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := elfInterp(bytes.NewReader(exe)), debugELFInterp(exe); got != want {
		t.Errorf("test binary: %q, debug/elf says %q", got, want)
	}
}

// Damaged and hostile files: never a panic, and where debug/elf finds an
// interpreter, the same one.
func FuzzELFInterp(f *testing.F) {
	if b, err := os.ReadFile("/bin/sh"); err == nil && len(b) > 4096 {
		f.Add(b[:4096])
	}
	f.Add([]byte("\x7fELF"))
	f.Add([]byte("#!/bin/sh\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := elfInterp(bytes.NewReader(b))
		if want := debugELFInterp(b); want != "" && len(want) <= 4096 && got != want {
			t.Errorf("%q, debug/elf says %q", got, want)
		}
	})
}
