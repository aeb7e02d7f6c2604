package sandbox

import (
	"fmt"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
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
		return landlockNone()
	}
	return landlockAt(min(abi, maxABI))
}

func landlockNone() Level {
	return Level{Missing: []string{"landlock: not offered by this kernel (or not enabled at boot): no file system or network rules"}}
}

// landlockAt is the Level of Landlock ABI abi (1 to maxABI).
func landlockAt(abi int) Level {
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
// them are, so whatever no rule grants is refused. nnp says no_new_privs
// is already set on every thread (the seccomp filter, loaded with TSYNC,
// set it): then one all-threads call is enough, where go-landlock's
// Restrict makes two, each of which stops every thread of the process.
func restrictLandlock(p Policy, avail Level, nnp bool) error {
	if !avail.FS {
		return nil
	}
	cfg := configs[avail.ABI]
	handled := uint64(cfg.HandledAccessFS)
	attr := ll.RulesetAttr{HandledAccessFS: handled, Scoped: uint64(cfg.Scoped)}
	if avail.Net {
		attr.HandledAccessNet = ll.AccessNetConnectTCP | ll.AccessNetBindTCP
		if p.AnyTCP {
			attr.HandledAccessNet = ll.AccessNetBindTCP // every connect stays allowed
		}
	}
	fd, err := ll.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return fmt.Errorf("landlock_create_ruleset: %w", err)
	}
	defer unix.Close(fd)
	for _, step := range []struct {
		paths  []string
		rights uint64
	}{
		{p.Read, readFile | readDir},
		{p.Write, readFile | readDir | writeFile | writeDir},
		{p.WriteFiles, readFile | writeFile},
		{p.Exec, readFile | readDir | execFile},
	} {
		for _, path := range step.paths {
			if err := addPath(fd, path, step.rights&handled); err != nil {
				return err
			}
		}
	}
	if avail.Net && !p.AnyTCP {
		for _, port := range p.ConnectTCP {
			if err := ll.LandlockAddNetPortRule(fd, &ll.NetPortAttr{AllowedAccess: ll.AccessNetConnectTCP, Port: uint64(port)}, 0); err != nil {
				return fmt.Errorf("landlock_add_rule port %d: %w", port, err)
			}
		}
	}
	if !nnp {
		if err := ll.AllThreadsPrctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if err := ll.AllThreadsLandlockRestrictSelf(fd, 0); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return nil
}

// addPath grants rights beneath path (a file gets only the rights that
// apply to files); a path that does not exist is skipped.
func addPath(fd int, path string, rights uint64) error {
	if path == "" {
		return nil
	}
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		rights &= fileRights
	}
	if rights == 0 {
		return nil
	}
	if err := ll.LandlockAddPathBeneathRule(fd, &ll.PathBeneathAttr{ParentFd: pfd, AllowedAccess: rights}, 0); err != nil {
		return fmt.Errorf("landlock_add_rule %s: %w", path, err)
	}
	return nil
}
