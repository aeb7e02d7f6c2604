package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Entry is a queued message as a directory scan sees it: no file opened.
type Entry struct {
	ID      string
	NextTry time.Time // the envelope's mtime
	Held    bool
}

// Scan lists queue/ (and hold/) in ID order, which is arrival order. It
// stats each envelope but opens none. Names that are not queue IDs, and
// anything that is not a regular file, are moved to corrupt/ and reported
// through aside.
func (s *Spool) Scan(aside func(name string, err error)) ([]Entry, error) {
	var out []Entry
	for _, dir := range []string{dirQueue, dirHold} {
		ents, err := os.ReadDir(filepath.Join(s.Dir, dir))
		if err != nil {
			return nil, fmt.Errorf("spool: scan %s: %w", dir, err)
		}
		for _, de := range ents {
			name := de.Name()
			if !ValidID(name) || !de.Type().IsRegular() {
				err := s.moveAside(dir, name, name)
				if aside != nil {
					aside(filepath.Join(dir, name), fmt.Errorf("spool: foreign file: %w", err))
				}
				continue
			}
			fi, err := de.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // delivered or removed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("spool: scan %s: %w", name, err)
			}
			out = append(out, Entry{ID: name, NextTry: fi.ModTime(), Held: dir == dirHold})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ReadEnvelope reads the envelope of queue/ID (or hold/ID).
func (s *Spool) ReadEnvelope(id string) (*Envelope, error) {
	if err := cleanName(id); err != nil {
		return nil, err
	}
	f, err := s.openQueued(id)
	if err != nil {
		return nil, fmt.Errorf("spool: open envelope %s: %w", id, err)
	}
	defer f.Close()
	env, err := readTrailer(f)
	if errors.Is(err, errNoTrailer) {
		env, err = readVersion1(f)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %s: %w", id, err)
	}
	if env.ID != id {
		return nil, fmt.Errorf("spool: %s: %w: envelope names ID %s", id, ErrCorrupt, env.ID)
	}
	return env, nil
}

// OpenData opens a queued message's content and checks it has the
// envelope's size, so a truncated message is never sent as if whole.
func (s *Spool) OpenData(env *Envelope) (*Data, error) {
	if err := cleanName(env.ID); err != nil {
		return nil, err
	}
	f, err := s.openQueued(env.ID)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("spool: open %s: %w", env.ID, ErrNotQueued)
		}
		return nil, fmt.Errorf("spool: open %s: %w", env.ID, err)
	}
	// The envelope was read and checked against this offset already.
	size, _, err := readOffsets(f)
	if err == nil {
		if size != env.Size {
			f.Close()
			return nil, fmt.Errorf("spool: %s: %w: content is %d bytes, envelope says %d", env.ID, ErrCorrupt, size, env.Size)
		}
		return &Data{SectionReader: io.NewSectionReader(f, 0, env.Size), f: f}, nil
	}
	f.Close()
	if !errors.Is(err, errNoTrailer) {
		return nil, fmt.Errorf("spool: %s: %w", env.ID, err)
	}
	return s.openDataV1(env)
}

// openDataV1 opens the content of a version 1 message, data/ID.
func (s *Spool) openDataV1(env *Envelope) (*Data, error) {
	f, err := os.Open(s.path(dirData, env.ID))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("spool: %s: %w: data file missing", env.ID, ErrCorrupt)
		}
		return nil, fmt.Errorf("spool: open data %s: %w", env.ID, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: stat data %s: %w", env.ID, err)
	}
	if fi.Size() != env.Size {
		f.Close()
		return nil, fmt.Errorf("spool: %s: %w: data is %d bytes, envelope says %d", env.ID, ErrCorrupt, fi.Size(), env.Size)
	}
	return &Data{SectionReader: io.NewSectionReader(f, 0, env.Size), f: f}, nil
}

// Delivering reports whether a qrun has the message's content open for
// delivery right now (it holds the shared lock OpenData takes).
func (s *Spool) Delivering(id string) bool {
	if cleanName(id) != nil {
		return false
	}
	f, err := openPlain(s.path(dirQueue, id), unix.O_RDONLY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}

// SetNextTry records when the message is next due (the envelope's mtime).
// Losing it in a crash only makes the message due early.
func (s *Spool) SetNextTry(id string, t time.Time) error {
	if err := cleanName(id); err != nil {
		return err
	}
	if err := os.Chtimes(s.path(dirQueue, id), t, t); err != nil {
		return fmt.Errorf("spool: set next try %s: %w", id, err)
	}
	return nil
}

// Remove deletes a finished message. Unlinking queue/ID is the point where
// it stops being queued; the state (and a version 1 data file) go after it.
func (s *Spool) Remove(id string) error {
	if err := cleanName(id); err != nil {
		return err
	}
	defer s.lockID(id)()
	err := os.Remove(s.path(dirQueue, id))
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Remove(s.path(dirHold, id))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: remove %s: %w", id, ErrNotQueued)
	}
	if err != nil {
		return fmt.Errorf("spool: remove %s: %w", id, err)
	}
	if err := s.fsyncDir(dirQueue); err != nil {
		return fmt.Errorf("spool: remove %s: %w", id, err)
	}
	os.Remove(s.path(dirData, id))
	os.Remove(s.path(dirState, id))
	return nil
}

// ErrNotQueued means no message has that ID (any more).
var ErrNotQueued = errors.New("no such message in the queue")

// MoveAside moves every file of a damaged message to corrupt/, where an
// admin can look at it; nothing is deleted.
func (s *Spool) MoveAside(id string) error {
	if err := cleanName(id); err != nil {
		return err
	}
	defer s.lockID(id)()
	var first error
	for _, d := range []string{dirQueue, dirHold, dirData, dirState} {
		if err := s.moveAside(d, id, id+"."+d); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Spool) moveAside(dir, name, as string) error {
	from := s.path(dir, name)
	if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	to := s.path(dirCorrupt, as)
	for i := 1; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		}
		to = s.path(dirCorrupt, fmt.Sprintf("%s.%d", as, i))
	}
	if err := s.ops.Rename(from, to); err != nil {
		return fmt.Errorf("spool: move %s aside: %w", from, err)
	}
	return s.fsyncDir(dir)
}

// Hold moves a message out of the delivery scan; Release brings it back.
func (s *Spool) Hold(id string) error    { return s.relink(id, dirQueue, dirHold) }
func (s *Spool) Release(id string) error { return s.relink(id, dirHold, dirQueue) }

func (s *Spool) relink(id, from, to string) error {
	if err := cleanName(id); err != nil {
		return err
	}
	if err := s.ops.Rename(s.path(from, id), s.path(to, id)); err != nil {
		return fmt.Errorf("spool: move %s to %s: %w", id, to, err)
	}
	if err := s.fsyncDir(to); err != nil {
		return err
	}
	return s.fsyncDir(from)
}

// CleanStale removes what a crash can leave that was never committed (or
// was, and kept its tmp/ name too): tmp/ files, and version 1 data/ files
// without an envelope, older than age. It calls
// removed for each, so qrun can log them.
func (s *Spool) CleanStale(age time.Duration, removed func(path string)) error {
	cutoff := s.ops.Now().Add(-age)
	// Which data files have an envelope, from two directory reads rather
	// than a stat per message: a pass over a big queue pays for this.
	queued := map[string]bool{}
	for _, dir := range []string{dirQueue, dirHold} {
		names, err := readNames(filepath.Join(s.Dir, dir))
		if err != nil {
			return fmt.Errorf("spool: clean %s: %w", dir, err)
		}
		for _, n := range names {
			queued[n] = true
		}
	}
	for _, dir := range []string{dirTmp, dirData} {
		ents, err := os.ReadDir(filepath.Join(s.Dir, dir))
		if err != nil {
			return fmt.Errorf("spool: clean %s: %w", dir, err)
		}
		for _, de := range ents {
			name := de.Name()
			if dir == dirData && queued[name] {
				continue
			}
			fi, err := de.Info()
			if err != nil {
				continue
			}
			// A second link to the file: the message was linked into
			// queue/ or hold/ and a crash came before tmp/ID was unlinked.
			// It is removed now, whatever its mtime (the next-try time,
			// shared with queue/ID, may lie in the future): the queued
			// link keeps the message.
			linked := dir == dirTmp && fi.Sys() != nil && fi.Sys().(*syscall.Stat_t).Nlink > 1
			if !linked && fi.ModTime().After(cutoff) {
				continue
			}
			if dir == dirData && !ValidID(name) {
				s.moveAside(dir, name, name)
				continue
			}
			if os.Remove(s.path(dir, name)) == nil && removed != nil {
				removed(filepath.Join(dir, name))
			}
		}
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// Lock is qrun's exclusive hold on the spool.
type Lock struct{ f *os.File }

// ErrLocked means another qrun holds the lock.
var ErrLocked = errors.New("spool: locked by another qrun")

// TryLock takes the spool lock without waiting.
func (s *Spool) TryLock() (*Lock, error) {
	f, err := os.OpenFile(s.LockPath(), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("spool: lock: %w", err)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return &Lock{f: f}, nil
}

// Unlock releases the lock.
func (l *Lock) Unlock() error { return l.f.Close() }
