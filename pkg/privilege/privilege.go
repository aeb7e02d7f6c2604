// Package privilege drops root for good before any input is read.
//
// The launcher (xinetd, systemd, tcpserver) is the only part of the system
// that holds root. If it starts us as root anyway, we become the configured
// user with exactly that user's groups, and check that root cannot be
// regained. Started as any other user, there is nothing to drop.
package privilege

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"

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

// Drop becomes user name if running as root; otherwise it does nothing
// and reports false.
func Drop(name string) (dropped bool, err error) {
	if os.Geteuid() != 0 && os.Getuid() != 0 {
		return false, nil
	}
	id, err := Lookup(name)
	if err != nil {
		return false, err
	}
	if id.UID == 0 {
		return false, ErrRoot
	}
	// Go applies these to every thread of the process (since Go 1.16).
	if err := unix.Setgroups(id.Groups); err != nil {
		return false, fmt.Errorf("privilege: setgroups: %w", err)
	}
	if err := unix.Setresgid(id.GID, id.GID, id.GID); err != nil {
		return false, fmt.Errorf("privilege: setgid %d: %w", id.GID, err)
	}
	if err := unix.Setresuid(id.UID, id.UID, id.UID); err != nil {
		return false, fmt.Errorf("privilege: setuid %d: %w", id.UID, err)
	}
	if unix.Setuid(0) == nil || os.Geteuid() == 0 {
		return false, errors.New("privilege: root could be regained after dropping it")
	}
	if home := id.Home; home != "" {
		os.Setenv("HOME", home)
	}
	os.Setenv("USER", id.Name)
	os.Setenv("LOGNAME", id.Name)
	return true, nil
}
