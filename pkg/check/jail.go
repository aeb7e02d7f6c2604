package check

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"smtp-bs/pkg/privilege"
)

// milters: each milter's unix socket must be reachable by the run user
// (write permission on the socket, search permission on every directory
// above it). As root or as the run user the audit also connects, as the
// run user; a milter that is not running is worth a note, not a failure
// (its default_action covers it).
func (au *auditor) milters() {
	for _, m := range au.Config.Milters {
		p := m.Unix()
		if p == "" {
			network, addr := m.Network()
			c, err := net.DialTimeout(network, addr, 2*time.Second)
			if err != nil {
				au.note("milter %s (%s): nothing answers now (%v); default_action %s applies while it is down", m.Name, m.Socket, err, m.DefaultAction)
				continue
			}
			c.Close()
			au.ok("milter %s: %s answers", m.Name, addr)
			continue
		}
		if au.id == nil {
			continue
		}
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			au.note("milter %s: %s does not exist (is the milter running?); default_action %s applies while it is down", m.Name, p, m.DefaultAction)
			continue
		}
		st, ok := au.stat(p)
		if !ok {
			continue
		}
		if fi.Mode()&fs.ModeSocket == 0 {
			au.fail(Config, p, fmt.Sprintf("milter %s: not a socket", m.Name), "")
			continue
		}
		if bad, fix := au.reach(p, st); bad != "" {
			au.fail(Permission, p, fmt.Sprintf("milter %s: %s cannot connect: %s", m.Name, au.id.Name, bad), fix)
			continue
		}
		if err := au.dialAs("unix", p); err != nil {
			if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
				au.fail(Permission, p, fmt.Sprintf("milter %s: connecting as %s is refused (%v)", m.Name, au.id.Name, err), "")
			} else {
				au.note("milter %s: %s does not answer (%v); default_action %s applies while it is down", m.Name, p, err, m.DefaultAction)
			}
			continue
		}
		au.ok("milter %s: %s reachable by %s (%s %s)", m.Name, p, au.id.Name, owner(st), perm(st))
	}
}

// reach says why the run user could not connect to the socket at p, and
// the fix; "" when it can.
func (au *auditor) reach(p string, st *syscall.Stat_t) (bad, fix string) {
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		if dst, ok := au.stat(d); ok && !au.id.can(dst, 0o1) {
			return fmt.Sprintf("it may not enter %s (%s %s)", d, owner(dst), perm(dst)),
				fmt.Sprintf("usermod -a -G %s %s (or chmod o+x %s)", groupName(dst.Gid), quote(au.id.Name), quote(d))
		}
		if d == "/" || d == "." {
			break
		}
	}
	if !au.id.can(st, 0o2) {
		return fmt.Sprintf("the socket is %s %s and it needs write permission", owner(st), perm(st)),
			fmt.Sprintf("usermod -a -G %s %s, and have the milter make its socket group-writable (e.g. UMask 007)", groupName(st.Gid), quote(au.id.Name))
	}
	return "", ""
}

// dialAs connects to a socket as the run user: directly when the audit
// runs as it, through a temporary change of effective user when it runs
// as root. As anyone else it does not try.
func (au *auditor) dialAs(network, addr string) error {
	dial := func() error {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	switch euid := os.Geteuid(); {
	case euid == au.id.UID:
		return dial()
	case euid == 0:
		// Only as a user the system knows (tests may audit a made-up one).
		if real, err := privilege.Lookup(au.id.Name); err == nil && real.UID == au.id.UID && real.UID != 0 {
			return privilege.AsUser(real, dial)
		}
	}
	return nil
}

// chroot: the jail is root's and nobody else may change it; inside it,
// only the spool is the run user's; the run user can walk from the jail's
// top to the spool; and a jail that serves [local] domains has the files
// their recipient checks read (passwd, aliases) at the same paths inside.
func (au *auditor) chroot() {
	dir := au.Config.Chroot.Dir
	if dir == "" {
		return
	}
	jail := au.real(dir)
	fi, err := os.Stat(jail)
	if errors.Is(err, fs.ErrNotExist) {
		au.fail(Config, jail, "the chroot dir does not exist", au.mkjail(jail))
		return
	}
	if err != nil || !fi.IsDir() {
		au.fail(Config, jail, "the chroot dir is not a directory", "")
		return
	}
	st, ok := au.stat(jail)
	if !ok {
		return
	}
	au.ancestry(jail)
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		au.fail(Permission, jail, fmt.Sprintf("the jail is %s %s: only root may change it (the run user must not plant files in its own root)", owner(st), perm(st)),
			fmt.Sprintf("chown root:root %s && chmod 0755 %s", quote(jail), quote(jail)))
		return
	}
	if au.id == nil {
		return
	}
	spoolDir := au.real(au.Config.Spool.Dir)
	rel, err := filepath.Rel(jail, spoolDir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		au.fail(Config, spoolDir, fmt.Sprintf("the spool (symlinks resolved) is not inside the jail %s", jail), "")
		return
	}
	for d := filepath.Dir(spoolDir); ; d = filepath.Dir(d) {
		if dst, ok := au.stat(d); ok && !au.id.can(dst, 0o1) {
			au.fail(Permission, d, fmt.Sprintf("%s cannot reach the spool inside the jail: %s %s", au.id.Name, owner(dst), perm(dst)),
				"chmod o+x "+quote(d))
		}
		if d == jail || d == "/" {
			break
		}
	}
	var mine []string
	n := 0
	filepath.WalkDir(jail, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == jail {
			return nil
		}
		if p == spoolDir {
			return filepath.SkipDir
		}
		if n++; n > 10000 {
			return filepath.SkipAll
		}
		if lst, ok := au.lstat(p); ok && lst.Mode&syscall.S_IFMT != syscall.S_IFLNK &&
			(int(lst.Uid) == au.id.UID || au.id.can(lst, 0o2)) {
			mine = append(mine, fmt.Sprintf("%s (%s %s)", p, owner(lst), perm(lst)))
		}
		return nil
	})
	if len(mine) > 0 {
		au.fail(Permission, jail, fmt.Sprintf("inside the jail only the spool may be %s's or writable by it: %s, e.g. %s", au.id.Name, count(len(mine), "entry"), mine[0]),
			fmt.Sprintf("find %s -path %s -prune -o -exec chown root:root {} + -exec chmod go-w {} +", quote(jail), quote(spoolDir)))
		return
	}
	if len(au.Config.Local.Domains) > 0 {
		var missing []string
		for _, p := range []string{"/etc/passwd", "/etc/group", au.Config.Local.Aliases} {
			if _, err := os.Stat(p); err != nil {
				continue // not there outside either
			}
			if _, err := os.Stat(filepath.Join(jail, p)); err != nil {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			au.fail(Config, jail, fmt.Sprintf("[local] domains are served, and their recipient checks read %s inside the jail, where they are missing", strings.Join(missing, ", ")),
				au.mkjail(jail))
			return
		}
	}
	au.ok("chroot %s: %s %s, only the spool inside is %s's", jail, owner(st), perm(st), au.id.Name)
}

// mkjail is the command that builds the jail (from the source tree).
func (au *auditor) mkjail(jail string) string {
	local := ""
	if len(au.Config.Local.Domains) > 0 {
		local = " -local"
	}
	return "sh contrib/chroot/mkjail.sh" + local + " -user " + quote(au.Config.RunAs) + au.cfgArg() + " " + quote(jail)
}
