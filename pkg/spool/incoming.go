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

// writeBuffer is the content's write buffer: a 2 KB message is written
// in one call, a big one in few; a larger buffer costs every connection
// fresh pages of memory.
const writeBuffer = 16 << 10

// ErrExists is returned when a queue ID is already taken: the message was
// not committed and the client should retry.
var ErrExists = errors.New("spool: queue ID already in use")

// New starts a message under a fresh queue ID.
func (s *Spool) New() (*Incoming, error) {
	id := s.newID()
	f, err := s.ops.Create(s.path(dirTmp, id))
	if err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", id, err)
	}
	m := &Incoming{s: s, id: id, f: f}
	m.w = bufio.NewWriterSize(writerFunc(func(p []byte) (int, error) { return s.ops.Write(f, p) }), writeBuffer)
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
	if err := env.appendTrailer(m.w); err != nil {
		return fmt.Errorf("spool: write %s: %w", m.id, err)
	}
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("spool: write %s: %w", m.id, err)
	}
	if err := m.s.ops.Fsync(m.f); err != nil {
		return fmt.Errorf("spool: fsync %s: %w", m.id, err)
	}
	if err := m.f.Close(); err != nil {
		return fmt.Errorf("spool: close %s: %w", m.id, err)
	}
	m.closed = true
	return m.s.publish(m.id, dir)
}

// publish links the written and fsynced tmp/ID into dir (queue/ or hold/)
// and makes that durable: the commit point. It never replaces a message.
func (s *Spool) publish(id, dir string) error {
	if err := s.ops.Link(s.path(dirTmp, id), s.path(dir, id)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("spool: commit %s: %w", id, ErrExists)
		}
		return fmt.Errorf("spool: commit %s: %w", id, err)
	}
	if err := s.fsyncDir(dir); err != nil {
		// The link may or may not survive a crash now; withdrawing it is
		// the only way to make "not committed" true, so the client may
		// retry.
		os.Remove(s.path(dir, id))
		return fmt.Errorf("spool: commit %s: fsync %s/: %w", id, dir, err)
	}
	os.Remove(s.path(dirTmp, id))
	return nil
}

// Abort discards the message.
func (m *Incoming) Abort() {
	if !m.closed {
		m.f.Close()
		m.closed = true
	}
	os.Remove(m.s.path(dirTmp, m.id))
}

// Enqueue queues a whole message at once (a bounce qrun makes). The ID is
// given, so a crash that repeats the work finds it already done: ErrExists.
func (s *Spool) Enqueue(env *Envelope, content []byte) error {
	if err := cleanName(env.ID); err != nil {
		return err
	}
	defer s.lockID(env.ID)()
	env.Size = int64(len(content))
	tmp := s.path(dirTmp, env.ID)
	os.Remove(tmp) // left by a crash of an earlier try: ours
	defer os.Remove(tmp)
	f, err := s.ops.Create(tmp)
	if err != nil {
		return fmt.Errorf("spool: create %s: %w", env.ID, err)
	}
	w := bufio.NewWriterSize(writerFunc(func(p []byte) (int, error) { return s.ops.Write(f, p) }), writeBuffer)
	w.Write(content)
	err = env.appendTrailer(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = s.ops.Fsync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool: write %s: %w", env.ID, err)
	}
	// Due now by the spool's clock (the file system's may differ in tests).
	now := s.ops.Now()
	os.Chtimes(tmp, now, now)
	if err := s.publish(env.ID, dirQueue); err != nil {
		if errors.Is(err, ErrExists) {
			return ErrExists
		}
		return err
	}
	return nil
}
