package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// A queued message is one file: the content, then the envelope, then a
// fixed-size trailer line that gives the envelope's offset. One file means
// one inode to create, one fsync and one link per message, which is most
// of what accepting a message costs; the envelope goes last because only
// the commit knows the size and the final recipients.
//
// Version 1 spools kept the envelope in queue/ID and the content in
// data/ID; such messages are still read and delivered.
const (
	trailerMagic = "smtp-bs-trailer "
	trailerLen   = len(trailerMagic) + 20 + 1
)

// appendTrailer renders env followed by the trailer line.
func (e *Envelope) appendTrailer(w io.Writer) error {
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	b = fmt.Appendf(b, "%s%020d\n", trailerMagic, e.Size)
	_, err = w.Write(b)
	return err
}

// errNoTrailer: the file is a version 1 envelope (or not ours at all).
var errNoTrailer = errors.New("no trailer")

// readOffsets reads the trailer of a queued message: where its envelope
// starts (= the content's size) and ends.
func readOffsets(f *os.File) (off, envEnd int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := fi.Size()
	if size < int64(trailerLen) {
		return 0, 0, errNoTrailer
	}
	tail := make([]byte, trailerLen)
	if _, err := f.ReadAt(tail, size-int64(trailerLen)); err != nil {
		return 0, 0, fmt.Errorf("read trailer: %w", err)
	}
	if !bytes.HasPrefix(tail, []byte(trailerMagic)) || tail[trailerLen-1] != '\n' {
		return 0, 0, errNoTrailer
	}
	digits := tail[len(trailerMagic) : trailerLen-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%w: trailer: bad envelope offset %q", ErrCorrupt, digits)
		}
	}
	off, err = strconv.ParseInt(string(digits), 10, 64)
	envEnd = size - int64(trailerLen)
	if err != nil || off > envEnd {
		return 0, 0, fmt.Errorf("%w: trailer: bad envelope offset %q", ErrCorrupt, tail[len(trailerMagic):trailerLen-1])
	}
	if envEnd-off > maxEnvelope {
		return 0, 0, fmt.Errorf("%w: trailer: envelope larger than %d bytes", ErrCorrupt, maxEnvelope)
	}
	return off, envEnd, nil
}

// readTrailer reads the envelope at the end of a queued message.
func readTrailer(f *os.File) (*Envelope, error) {
	off, envEnd, err := readOffsets(f)
	if err != nil {
		return nil, err
	}
	env, version, err := parseEnvelope(io.NewSectionReader(f, off, envEnd-off))
	if err != nil {
		return nil, err
	}
	if version < 2 {
		return nil, fmt.Errorf("%w: a version %d envelope in a trailer", ErrCorrupt, version)
	}
	if env.Size != off {
		return nil, fmt.Errorf("%w: content is %d bytes, envelope says %d", ErrCorrupt, off, env.Size)
	}
	return env, nil
}

// readVersion1 reads a file without a trailer: a version 1 envelope (the
// content is in data/ID), or else a message cut short.
func readVersion1(f *os.File) (*Envelope, error) {
	head := make([]byte, len(envelopeMagic)+3)
	if n, _ := f.ReadAt(head, 0); string(head[:n]) != envelopeMagic+" 1\n" {
		return nil, fmt.Errorf("%w: no trailer (the file was cut short, or smtp-bs did not write it)", ErrCorrupt)
	}
	return ParseEnvelope(io.NewSectionReader(f, 0, maxEnvelope+1))
}

// openQueued opens queue/ID, or hold/ID when it is held.
func (s *Spool) openQueued(id string) (*os.File, error) {
	f, err := openPlain(s.path(dirQueue, id), unix.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = openPlain(s.path(dirHold, id), unix.O_RDONLY, 0)
	}
	return f, err
}

// Data is a queued message's content, for reading.
type Data struct {
	*io.SectionReader
	f *os.File
}

// Close releases the file.
func (d *Data) Close() error { return d.f.Close() }

// MarkDelivering says "being delivered" to qrun -list (Delivering) until
// Close: a shared lock on the message's file. Only delivery marks it; an
// admin's qrun -show, or a bounce being built, does not. Advisory and for
// display only: if it cannot be had at once, delivery goes on without it.
func (d *Data) MarkDelivering() { unix.Flock(int(d.f.Fd()), unix.LOCK_SH|unix.LOCK_NB) }
