// Package privilege drops root for good before any input is read.
//
// The launcher (xinetd, systemd, tcpserver) is the only part of the system
// that holds root. If it starts us as root anyway, we become the configured
// user with exactly that user's groups, and check that root cannot be
// regained. Started as any other user, there is nothing to drop.
//
// With a chroot the steps come apart: Lookup while /etc/passwd is in
// reach, AsUser for what must be opened outside the jail as the run user
// (the log file, milter sockets), Chroot, then Become. The set*id calls
// are the syscall package's, which Go applies to every thread of the
// process; golang.org/x/sys/unix's Setgroups changes only the calling
// thread.
package privilege

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Identity is a user with its groups, resolved from the passwd database.
type Identity struct {
	Name   string
	UID    int
	GID    int
	Groups []int
	Home   string
}

// Lookup resolves name (or a numeric uid).
func Lookup(name string) (*Identity, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return nil, fmt.Errorf("privilege: user %q: %w", name, err)
		}
	}
	id := &Identity{Name: u.Username, Home: u.HomeDir}
	if id.UID, err = strconv.Atoi(u.Uid); err != nil {
		return nil, fmt.Errorf("privilege: user %q: uid %q", name, u.Uid)
	}
	if id.GID, err = strconv.Atoi(u.Gid); err != nil {
		return nil, fmt.Errorf("privilege: user %q: gid %q", name, u.Gid)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("privilege: groups of %q: %w", name, err)
	}
	id.Groups = []int{id.GID}
	for _, g := range gids {
		n, err := strconv.Atoi(g)
		if err == nil && n != id.GID {
			id.Groups = append(id.Groups, n)
		}
	}
	return id, nil
}

// ErrRoot is returned when the target user is root itself.
var ErrRoot = errors.New("privilege: refusing to run as root")

// IsRoot reports whether the process holds root (real or effective).
func IsRoot() bool { return os.Geteuid() == 0 || os.Getuid() == 0 }

// Drop becomes user name if running as root; otherwise it does nothing
// and reports false. It is Lookup followed by Become.
func Drop(name string) (dropped bool, err error) {
	if !IsRoot() {
		return false, nil
	}
	id, err := Lookup(name)
	if err != nil {
		return false, err
	}
	if err := Become(id); err != nil {
		return false, err
	}
	return true, nil
}

// Become makes the process id for good: its groups, then its gid, then its
// uid, real, effective and saved, and checks that root cannot be
// regained. Resolve id with Lookup first: after a chroot /etc/passwd is out
// of reach.
func Become(id *Identity) error {
	if id.UID == 0 {
		return ErrRoot
	}
	// syscall's set*id apply to every thread of the process (Go 1.16+).
	if err := syscall.Setgroups(id.Groups); err != nil {
		return fmt.Errorf("privilege: setgroups: %w", err)
	}
	if err := syscall.Setresgid(id.GID, id.GID, id.GID); err != nil {
		return fmt.Errorf("privilege: setgid %d: %w", id.GID, err)
	}
	if err := syscall.Setresuid(id.UID, id.UID, id.UID); err != nil {
		return fmt.Errorf("privilege: setuid %d: %w", id.UID, err)
	}
	if unix.Setuid(0) == nil || os.Geteuid() == 0 {
		return errors.New("privilege: root could be regained after dropping it")
	}
	if home := id.Home; home != "" {
		os.Setenv("HOME", home)
	}
	os.Setenv("USER", id.Name)
	os.Setenv("LOGNAME", id.Name)
	return nil
}

// AsUser runs f with id's groups and effective uid and gid, then takes root
// back: what f creates or connects to, it does as id would (a log file
// owned by id, a milter socket id may reach), and a symlink that id
// planted cannot make root write through it. Only for a process that is
// root and will Become id afterwards. f must not start goroutines that
// outlive it.
func AsUser(id *Identity, f func() error) error {
	if os.Geteuid() != 0 {
		return f()
	}
	if id.UID == 0 {
		return ErrRoot
	}
	groups, err := syscall.Getgroups()
	if err != nil {
		return fmt.Errorf("privilege: getgroups: %w", err)
	}
	if err := syscall.Setgroups(id.Groups); err != nil {
		return fmt.Errorf("privilege: setgroups: %w", err)
	}
	if err := syscall.Setresgid(-1, id.GID, -1); err != nil {
		return fmt.Errorf("privilege: setegid %d: %w", id.GID, err)
	}
	if err := syscall.Setresuid(-1, id.UID, -1); err != nil {
		return fmt.Errorf("privilege: seteuid %d: %w", id.UID, err)
	}
	ferr := f()
	// Back to root; if that fails the process must not go on half-way.
	if err := syscall.Setresuid(-1, 0, -1); err != nil {
		return fmt.Errorf("privilege: seteuid 0: %w", err)
	}
	if err := syscall.Setresgid(-1, 0, -1); err != nil {
		return fmt.Errorf("privilege: setegid 0: %w", err)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("privilege: setgroups: %w", err)
	}
	return ferr
}

// Chroot makes dir the process's root directory and moves into it. It
// needs root (CAP_SYS_CHROOT); call Become right after, since root could
// leave a chroot again.
func Chroot(dir string) error {
	if err := unix.Chroot(dir); err != nil {
		return fmt.Errorf("privilege: chroot %s: %w", dir, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("privilege: chdir / in %s: %w", dir, err)
	}
	return nil
}
