package sandbox

import (
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
)

// Interpreters lists what the kernel must also execute to run the
// programs in dir: the interpreter of each "#!" script, and the dynamic
// loader (PT_INTERP) of each ELF binary and of those interpreters. They
// are granted execute by file, not by directory: /bin/sh, not /bin.
func Interpreters(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	var add func(path string, depth int)
	add = func(path string, depth int) {
		if depth > 3 || seen[path] {
			return
		}
		seen[path] = true
		next := interpreterOf(path)
		if next == "" {
			return
		}
		if !seen[next] {
			out = append(out, next)
		}
		add(next, depth+1)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			add(filepath.Join(dir, e.Name()), 0)
		}
	}
	return out
}

// interpreterOf is the "#!" interpreter of a script or the loader of a
// dynamic ELF binary; "" for anything else.
func interpreterOf(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	if rest, ok := bytes.CutPrefix(head, []byte("#!")); ok {
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		if fields := strings.Fields(string(line)); len(fields) > 0 && filepath.IsAbs(fields[0]) {
			return fields[0]
		}
		return ""
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return ""
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err == nil {
				return string(bytes.TrimRight(b, "\x00"))
			}
		}
	}
	return ""
}
