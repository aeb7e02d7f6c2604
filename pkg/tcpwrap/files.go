package tcpwrap

import (
	"errors"
	"os"
	"syscall"
)

// errNotRegular marks a rule or pattern file that is not read because it
// is not a regular file (nor a directory, which reads as empty anyway).
var errNotRegular = errors.New("not a regular file")

// openRules opens a rule file or a "/path" pattern file. libwrap fopen()s
// whatever the path names; we read only regular files and directories
// (which read as empty, as they do in libwrap). A FIFO would block the
// check until someone writes to it, /dev/zero would never end (libwrap
// loops or crashes on it), a socket could be the client itself: those are
// treated as empty files, which is also what /dev/null gives in libwrap.
// The open does not block on a FIFO.
func openRules(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return nil, errNotRegular
	}
	return f, nil
}
