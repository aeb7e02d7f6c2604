// Package spool is the durable mail queue that smtp-bs writes and qrun reads.
//
// Invariants (docs/lifecycle.md and docs/guarantees.md tell the same for
// admins):
//
//   - A message is in the queue completely or not at all. smtp-bs writes
//     the content, then the envelope and a trailer that points at it, to
//     tmp/ID, fsyncs it, links it to queue/ID and fsyncs queue/. That link
//     is the commit point; only after it does the client hear 250.
//   - Many smtp-bs processes write at once without a lock: queue IDs carry
//     the time in microseconds and the writer's pid, so they are unique,
//     sort by time and are safe file names. link(2) refuses to overwrite,
//     so even a clash could not lose a message.
//   - queue/ID's mtime is the message's next delivery attempt (as Postfix
//     does), so a pass over messages that are not due opens none of them.
//   - Each recipient's outcome is appended to state/ID and fsynced right
//     after its attempt. A crash may deliver a recipient twice (it was in
//     flight), never zero times.
//   - Files that do not parse are moved to corrupt/ and logged, never deleted.
//   - Everything is created mode 0600 in directories of mode 0700: only the
//     run user reads mail.
package spool

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smtp-bs/pkg/safepath"
)

// Subdirectories of the spool.
const (
	dirTmp     = "tmp"
	dirData    = "data"
	dirQueue   = "queue"
	dirState   = "state"
	dirCorrupt = "corrupt"
	dirHold    = "hold"
	lockName   = "lock"
)

var subdirs = []string{dirTmp, dirData, dirQueue, dirState, dirCorrupt, dirHold}

// Ops are the OS calls a test may need to fail. The zero value of each
// field means the real call.
type Ops struct {
	Create func(path string) (*os.File, error)
	Write  func(f *os.File, p []byte) (int, error)
	Fsync  func(f *os.File) error
	Link   func(oldpath, newpath string) error
	Rename func(oldpath, newpath string) error
	Statfs func(path string, st *unix.Statfs_t) error
	Now    func() time.Time
}

func (o *Ops) fill() {
	if o.Create == nil {
		o.Create = func(p string) (*os.File, error) {
			return openPlain(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
		}
	}
	if o.Write == nil {
		o.Write = func(f *os.File, p []byte) (int, error) { return f.Write(p) }
	}
	if o.Fsync == nil {
		o.Fsync = func(f *os.File) error { return f.Sync() }
	}
	if o.Link == nil {
		o.Link = os.Link
	}
	if o.Rename == nil {
		o.Rename = os.Rename
	}
	if o.Statfs == nil {
		o.Statfs = unix.Statfs
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if failpointHook != nil {
		failpointHook(o)
	}
}

// failpointHook is set only in builds with the failpoint tag, for the
// crash tests (failpoint.go); in a normal build it is nil.
var failpointHook func(*Ops)

// Spool is an open spool directory.
type Spool struct {
	Dir string
	ops Ops

	mu     sync.Mutex
	lastID int64 // microseconds of the last ID this process made

	// idLocks serialise, within one process, the calls that create or
	// remove a given queue ID (Enqueue, Remove, MoveAside). qrun handles
	// messages concurrently, and a bounce queued again after a crash
	// (its ID is derived from the original's) can share its ID with the
	// copy being delivered and removed at that very moment: Remove's
	// unlinks must not hit the new copy.
	idLocks [64]sync.Mutex
}

// Open returns the spool at dir. It does not create anything: smtp-bs and
// qrun run as the spool's owner, and a missing spool is an install error
// that -check explains. Use Create to make one. A subdirectory or lockfile
// that is a symbolic link is refused: every later path under dir trusts
// that none is.
func Open(dir string, ops Ops) (*Spool, error) {
	ops.fill()
	s := &Spool{Dir: dir, ops: ops}
	for _, d := range subdirs {
		fi, err := os.Lstat(filepath.Join(dir, d))
		if err != nil {
			return nil, fmt.Errorf("spool: open %s: %w", dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("spool: open %s: %s is not a directory (a symbolic link is refused)", dir, d)
		}
	}
	if fi, err := os.Lstat(s.LockPath()); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("spool: open %s: %s is not a regular file (a symbolic link is refused)", dir, lockName)
	}
	return s, nil
}

// Create makes the spool directory tree (mode 0700) if it is missing, then
// opens it. Each subdirectory is made or opened without following a
// symbolic link, and Open refuses a lockfile that is one, so an existing
// tree with a link in it fails here instead of being reported ready.
func Create(dir string, ops Ops) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	root, err := safepath.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	defer root.Close()
	for _, d := range subdirs {
		sub, err := root.Sub(d, true, 0o700)
		if err != nil {
			return nil, fmt.Errorf("spool: create %s: %w", dir, err)
		}
		sub.Close()
	}
	// The lockfile is left to the first qrun (its owner shows who ran
	// it); Open refuses one that is a link.
	return Open(dir, ops)
}

// lockID takes the lock of id and returns its release.
func (s *Spool) lockID(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.idLocks[h.Sum32()%uint32(len(s.idLocks))]
	m.Lock()
	return m.Unlock
}

// Subdirs lists the spool's subdirectories, for -check.
func Subdirs() []string { return append([]string(nil), subdirs...) }

// LockPath is the lockfile qrun holds.
func (s *Spool) LockPath() string { return filepath.Join(s.Dir, lockName) }

func (s *Spool) path(dir, name string) string { return filepath.Join(s.Dir, dir, name) }

// Now is the spool's clock (a seam for tests of retry and lifetime).
func (s *Spool) Now() time.Time { return s.ops.Now() }

// FreeBytes is the space left to the run user on the spool's filesystem.
func (s *Spool) FreeBytes() (int64, error) {
	var st unix.Statfs_t
	if err := s.ops.Statfs(s.Dir, &st); err != nil {
		return 0, fmt.Errorf("spool: statfs %s: %w", s.Dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// newID returns a queue ID: 13 hex digits of microseconds since the epoch
// and 6 of the pid. Within one process the time part is strictly increasing.
func (s *Spool) newID() string {
	s.mu.Lock()
	us := s.ops.Now().UnixMicro()
	if us <= s.lastID {
		us = s.lastID + 1
	}
	s.lastID = us
	s.mu.Unlock()
	return fmt.Sprintf("%013x%06x", us, os.Getpid()&0xffffff)
}

// ValidID reports whether name has the form of a queue ID (a bounce's ID
// adds a suffix).
func ValidID(name string) bool {
	if len(name) < 19 || len(name) > 40 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case i >= 19 && (c == '.' || c == '-' || c >= 'g' && c <= 'z'):
		default:
			return false
		}
	}
	return true
}

// IDTime is the time encoded in a queue ID.
func IDTime(id string) (time.Time, bool) {
	if len(id) < 13 {
		return time.Time{}, false
	}
	us, err := strconv.ParseInt(id[:13], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

// openPlain opens a file for plain blocking system calls. os.OpenFile on
// Linux first tries to register every file with the network poller (five
// system calls that fail for a regular file or directory); a message's
// commit opens two.
func openPlain(path string, flag int, perm uint32) (*os.File, error) {
	fd, err := unix.Open(path, flag|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// fsyncDir makes a link, rename or unlink in dir durable.
func (s *Spool) fsyncDir(dir string) error {
	d, err := openPlain(filepath.Join(s.Dir, dir), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return s.ops.Fsync(d)
}

// IsNoSpace reports whether err means the disk or quota is full, which
// SMTP answers with 452 rather than 451.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrReserve)
}

// ErrReserve is returned when free space is below the configured reserve.
var ErrReserve = errors.New("spool: free space below the reserve")

// CheckReserve fails with ErrReserve when fewer than reserve+need bytes are free.
func (s *Spool) CheckReserve(reserve, need int64) error {
	free, err := s.FreeBytes()
	if err != nil {
		return err
	}
	if free < reserve+need {
		return fmt.Errorf("%w: %d bytes free, %d reserved, %d needed", ErrReserve, free, reserve, need)
	}
	return nil
}

// cleanName refuses anything that is not a bare ID, so a queue tool's
// argument can never name a path outside the spool.
func cleanName(id string) error {
	if !ValidID(id) || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("spool: %q is not a queue ID", id)
	}
	return nil
}
