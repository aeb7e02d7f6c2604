package spool

import (
	"bufio"
	"fmt"
	"os"
)

// Content flushes what has been written and opens it for reading, so that
// smtp-bs can show the whole message to its milters before it commits.
// The caller closes the file. Nothing is queued by this.
func (m *Incoming) Content() (*os.File, error) {
	if m.err != nil {
		return nil, m.err
	}
	if err := m.w.Flush(); err != nil {
		m.err = fmt.Errorf("spool: write %s: %w", m.id, err)
		return nil, m.err
	}
	f, err := os.Open(m.s.path(dirTmp, m.id))
	if err != nil {
		return nil, fmt.Errorf("spool: reopen %s: %w", m.id, err)
	}
	return f, nil
}

// Rewrite starts the content over, empty, under the same queue ID (so a
// Received header that names the ID stays true). A file returned by
// Content before keeps reading the old content: the old tmp file is
// unlinked, not truncated. Nothing was queued, so a crash in between
// leaves only tmp/ files, as ever.
func (m *Incoming) Rewrite() error {
	if m.err != nil {
		return m.err
	}
	if m.closed {
		return fmt.Errorf("spool: rewrite %s: already closed", m.id)
	}
	p := m.s.path(dirTmp, m.id)
	m.f.Close()
	m.closed = true
	if err := os.Remove(p); err != nil {
		m.err = fmt.Errorf("spool: rewrite %s: %w", m.id, err)
		return m.err
	}
	f, err := m.s.ops.Create(p)
	if err != nil {
		m.err = fmt.Errorf("spool: rewrite %s: %w", m.id, err)
		return m.err
	}
	m.f, m.closed, m.n = f, false, 0
	m.w = bufio.NewWriterSize(writerFunc(func(p []byte) (int, error) { return m.s.ops.Write(f, p) }), writeBuffer)
	return nil
}
