package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Incoming is a message being written by smtp-bs. Nothing of it is in the
// queue until Commit returns nil; Abort (or a crash) leaves only tmp/ files,
// which qrun removes once they are stale.
type Incoming struct {
	s      *Spool
	id     string
	f      *os.File
	w      *bufio.Writer
	n      int64
	err    error
	closed bool
}

// ErrExists is returned when a queue ID is already taken: the message was
// not committed and the client should retry.
var ErrExists = errors.New("spool: queue ID already in use")

// New starts a message under a fresh queue ID.
func (s *Spool) New() (*Incoming, error) {
	id := s.newID()
	f, err := s.ops.Create(s.path(dirTmp, id+".data"))
	if err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", id, err)
	}
	m := &Incoming{s: s, id: id, f: f}
	m.w = bufio.NewWriterSize(writerFunc(func(p []byte) (int, error) { return s.ops.Write(f, p) }), 64<<10)
	return m, nil
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// ID is the message's queue ID, known before the content is written so the
// Received header can carry it.
func (m *Incoming) ID() string { return m.id }

// Size is the number of bytes written so far.
func (m *Incoming) Size() int64 { return m.n }

// Write appends message content.
func (m *Incoming) Write(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n, err := m.w.Write(p)
	m.n += int64(n)
	if err != nil {
		m.err = fmt.Errorf("spool: write %s: %w", m.id, err)
	}
	return n, m.err
}

// Commit makes the message durable and queued with env (whose ID and Size
// it fills in). On any error nothing is queued and the tmp files are gone.
func (m *Incoming) Commit(env *Envelope) error { return m.commit(env, dirQueue) }

// CommitHeld is Commit into hold/ instead of queue/: the message is durable
// but not delivered until an admin releases it (a milter's quarantine).
// Committing straight into hold/ leaves no moment in which qrun could
// pick it up.
func (m *Incoming) CommitHeld(env *Envelope) error { return m.commit(env, dirHold) }

func (m *Incoming) commit(env *Envelope, dir string) (err error) {
	defer func() {
		if err != nil {
			m.Abort()
		}
	}()
	if m.err != nil {
		return m.err
	}
	env.ID, env.Size = m.id, m.n
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("spool: write %s: %w", m.id, err)
	}
	// Both files are written before either is fsynced, and both links
	// made before either directory is fsynced: every file and directory is
	// still fsynced before the 250, but a journaling file system (ext4,
	// xfs) then commits each pair in one journal transaction instead of
	// four, which is most of the cost of accepting a message.
	ef, err := m.s.createEnvelope(dirTmp, m.id+".env", env)
	if err != nil {
		return err
	}
	defer ef.Close()
	if err := m.s.ops.Fsync(m.f); err != nil {
		return fmt.Errorf("spool: fsync %s: %w", m.id, err)
	}
	if err := m.f.Close(); err != nil {
		return fmt.Errorf("spool: close %s: %w", m.id, err)
	}
	m.closed = true
	if err := m.s.ops.Fsync(ef); err != nil {
		return fmt.Errorf("spool: fsync %s.env: %w", m.id, err)
	}
	if err := ef.Close(); err != nil {
		return fmt.Errorf("spool: close %s.env: %w", m.id, err)
	}
	s := m.s
	if err := s.ops.Link(s.path(dirTmp, m.id+".data"), s.path(dirData, m.id)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("spool: commit %s: %w", m.id, ErrExists)
		}
		return fmt.Errorf("spool: commit %s: %w", m.id, err)
	}
	// The envelope's link is the commit point. It comes after the data's,
	// so a journal that keeps the order of its operations (all of the
	// above do) never holds the envelope without the data; a file system
	// that does not could leave a damaged envelope, never acknowledged,
	// which qrun moves aside.
	if err := s.ops.Link(s.path(dirTmp, m.id+".env"), s.path(dir, m.id)); err != nil {
		os.Remove(s.path(dirData, m.id))
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("spool: commit %s: %w", m.id, ErrExists)
		}
		return fmt.Errorf("spool: commit %s: %w", m.id, err)
	}
	for _, d := range []string{dirData, dir} {
		if err := s.fsyncDir(d); err != nil {
			// The links may or may not survive a crash now; withdrawing them
			// is the only way to make "not committed" true, so the client
			// may retry.
			os.Remove(s.path(dir, m.id))
			os.Remove(s.path(dirData, m.id))
			return fmt.Errorf("spool: commit %s: fsync %s/: %w", m.id, d, err)
		}
	}
	os.Remove(s.path(dirTmp, m.id+".data"))
	os.Remove(s.path(dirTmp, m.id+".env"))
	return nil
}

// Abort discards the message.
func (m *Incoming) Abort() {
	if !m.closed {
		m.f.Close()
		m.closed = true
	}
	os.Remove(m.s.path(dirTmp, m.id+".data"))
	os.Remove(m.s.path(dirTmp, m.id+".env"))
}

// createEnvelope writes env to dir/name and returns the file, open and not
// yet fsynced; on error nothing is left.
func (s *Spool) createEnvelope(dir, name string, env *Envelope) (*os.File, error) {
	b, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	p := s.path(dir, name)
	f, err := s.ops.Create(p)
	if err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", name, err)
	}
	if _, err := s.ops.Write(f, b); err != nil {
		f.Close()
		os.Remove(p)
		return nil, fmt.Errorf("spool: write %s: %w", name, err)
	}
	return f, nil
}

// writeFile writes env to dir/name and fsyncs it.
func (s *Spool) writeFile(dir, name string, env *Envelope) error {
	b, err := env.Marshal()
	if err != nil {
		return err
	}
	p := s.path(dir, name)
	f, err := s.ops.Create(p)
	if err != nil {
		return fmt.Errorf("spool: create %s: %w", name, err)
	}
	if _, err := s.ops.Write(f, b); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("spool: write %s: %w", name, err)
	}
	if err := s.ops.Fsync(f); err != nil {
		f.Close()
		os.Remove(p)
		return fmt.Errorf("spool: fsync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return fmt.Errorf("spool: close %s: %w", name, err)
	}
	return nil
}

// Enqueue queues a whole message at once (a bounce qrun makes). The ID is
// given, so a crash that repeats the work finds it already done: ErrExists.
func (s *Spool) Enqueue(env *Envelope, content []byte) error {
	if err := cleanName(env.ID); err != nil {
		return err
	}
	defer s.lockID(env.ID)()
	env.Size = int64(len(content))
	tmpData, tmpEnv := s.path(dirTmp, env.ID+".data"), s.path(dirTmp, env.ID+".env")
	os.Remove(tmpData)
	os.Remove(tmpEnv)
	defer os.Remove(tmpData)
	defer os.Remove(tmpEnv)
	f, err := s.ops.Create(tmpData)
	if err != nil {
		return fmt.Errorf("spool: create %s: %w", env.ID, err)
	}
	_, err = s.ops.Write(f, content)
	if err == nil {
		err = s.ops.Fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: write %s: %w", env.ID, err)
	}
	if err := s.writeFile(dirTmp, env.ID+".env", env); err != nil {
		return err
	}
	// Due now by the spool's clock (the file system's may differ in tests).
	now := s.ops.Now()
	os.Chtimes(tmpEnv, now, now)
	if _, err := os.Lstat(s.path(dirQueue, env.ID)); err == nil {
		return ErrExists
	}
	// data/ID may be left over from a crash between the two links below;
	// it is ours, so replace it.
	if err := s.ops.Rename(tmpData, s.path(dirData, env.ID)); err != nil {
		return fmt.Errorf("spool: commit %s: %w", env.ID, err)
	}
	// From here on, a failure withdraws what was done, as Commit does: an
	// error means "not queued", and the runner makes the bounce again.
	if err := s.fsyncDir(dirData); err != nil {
		os.Remove(s.path(dirData, env.ID))
		return fmt.Errorf("spool: commit %s: %w", env.ID, err)
	}
	if err := s.ops.Link(tmpEnv, s.path(dirQueue, env.ID)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		os.Remove(s.path(dirData, env.ID))
		return fmt.Errorf("spool: commit %s: %w", env.ID, err)
	}
	if err := s.fsyncDir(dirQueue); err != nil {
		os.Remove(s.path(dirQueue, env.ID))
		os.Remove(s.path(dirData, env.ID))
		return fmt.Errorf("spool: commit %s: %w", env.ID, err)
	}
	return nil
}
