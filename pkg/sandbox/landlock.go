package sandbox

import (
	"fmt"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// maxABI is the newest Landlock ABI whose rights we handle. ABI 8 adds
// nothing we use, and ABI 9 would start refusing connects to pathname
// unix sockets (syslog's /dev/log, the journal, milters): raising this
// needs WithResolveUnix rules for those first.
const maxABI = 7

var configs = [...]landlock.Config{1: landlock.V1, 2: landlock.V2, 3: landlock.V3,
	4: landlock.V4, 5: landlock.V5, 6: landlock.V6, 7: landlock.V7}

// landlockLevel is what the kernel offers, up to maxABI.
func landlockLevel() Level {
	abi, err := ll.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		return Level{Missing: []string{"landlock: not offered by this kernel (or not enabled at boot): no file system or network rules"}}
	}
	abi = min(abi, maxABI)
	l := Level{ABI: abi, FS: true, Net: abi >= 4}
	if abi < 2 {
		l.Missing = append(l.Missing, fmt.Sprintf("landlock ABI %d: no link or rename across directories (needs ABI 2): confinement off", abi))
		l.FS = false
	}
	if abi < 4 {
		l.Missing = append(l.Missing, fmt.Sprintf("landlock ABI %d: no TCP rules (needs ABI 4)", abi))
	}
	if abi < 6 {
		l.Missing = append(l.Missing, fmt.Sprintf("landlock ABI %d: signals and abstract unix sockets not scoped (needs ABI 6)", abi))
	}
	return l
}

// Rights, intersected with what the ABI in use handles.
const (
	readFile  = ll.AccessFSReadFile
	readDir   = ll.AccessFSReadDir
	execFile  = ll.AccessFSExecute
	writeFile = ll.AccessFSWriteFile | ll.AccessFSTruncate
	writeDir  = ll.AccessFSRemoveFile | ll.AccessFSMakeReg | ll.AccessFSMakeDir |
		ll.AccessFSRemoveDir | ll.AccessFSRefer
	fileRights = readFile | execFile | writeFile
)

// restrictLandlock enforces p's file and TCP rules at the ABI avail
// reports. Only the rights that ABI handles are restricted; all of
// them are, so whatever no rule grants is refused.
func restrictLandlock(p Policy, avail Level) error {
	cfg := configs[avail.ABI]
	if !avail.FS {
		return nil
	}
	handled := cfg.HandledAccessFS
	var rules []landlock.Rule
	add := func(paths []string, rights landlock.AccessFSSet) error {
		for _, path := range paths {
			fi, err := os.Stat(path)
			if err != nil {
				if os.IsNotExist(err) {
					continue
				}
				return fmt.Errorf("%s: %w", path, err)
			}
			r := rights
			if !fi.IsDir() {
				r &= fileRights
			}
			if r &= handled; r != 0 {
				rules = append(rules, landlock.PathAccess(r, path))
			}
		}
		return nil
	}
	for _, step := range []struct {
		paths  []string
		rights landlock.AccessFSSet
	}{
		{p.Read, readFile | readDir},
		{p.Write, readFile | readDir | writeFile | writeDir},
		{p.WriteFiles, readFile | writeFile},
		{p.Exec, readFile | readDir | execFile},
	} {
		if err := add(step.paths, step.rights); err != nil {
			return err
		}
	}
	if avail.Net {
		if p.AnyTCP {
			// Handle bind only: every connect stays allowed.
			cfg.HandledAccessNet = ll.AccessNetBindTCP
		}
		for _, port := range p.ConnectTCP {
			if !p.AnyTCP {
				rules = append(rules, landlock.ConnectTCP(port))
			}
		}
	}
	return cfg.Restrict(rules...)
}
