package sandbox

import (
	"bytes"
	"encoding/binary"
	"io"
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
	return elfInterp(f)
}

// elfInterp is the PT_INTERP path of an ELF file; "" when there is none
// or the file is not ELF. It reads only the program headers: debug/elf
// would do, but it links DWARF, zlib and zstd readers (and their package
// init) into every smtp-bs process, which never runs this.
func elfInterp(r io.ReaderAt) string {
	var id [16]byte
	if _, err := r.ReadAt(id[:], 0); err != nil || string(id[:4]) != "\x7fELF" {
		return ""
	}
	var bo binary.ByteOrder
	switch id[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return ""
	}
	// Offsets of e_phoff, e_phentsize, e_phnum and of a program header's
	// p_offset and p_filesz, for ELFCLASS32 and ELFCLASS64.
	var hdr [64]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil && err != io.EOF {
		return ""
	}
	var phoff uint64
	var entsize, num int
	is64 := id[4] == 2
	switch {
	case id[4] == 1:
		phoff = uint64(bo.Uint32(hdr[28:]))
		entsize, num = int(bo.Uint16(hdr[42:])), int(bo.Uint16(hdr[44:]))
	case is64:
		phoff = bo.Uint64(hdr[32:])
		entsize, num = int(bo.Uint16(hdr[54:])), int(bo.Uint16(hdr[56:]))
	default:
		return ""
	}
	if (is64 && entsize < 56) || (!is64 && entsize < 32) || num > 256 {
		return ""
	}
	ph := make([]byte, entsize)
	for i := range num {
		if _, err := r.ReadAt(ph, int64(phoff)+int64(i*entsize)); err != nil {
			return ""
		}
		if bo.Uint32(ph) != 3 { // PT_INTERP
			continue
		}
		var off, size uint64
		if is64 {
			off, size = bo.Uint64(ph[8:]), bo.Uint64(ph[32:])
		} else {
			off, size = uint64(bo.Uint32(ph[4:])), uint64(bo.Uint32(ph[16:]))
		}
		if size == 0 || size > 4096 || off > 1<<40 {
			return ""
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return ""
		}
		return string(bytes.TrimRight(b, "\x00"))
	}
	return ""
}
