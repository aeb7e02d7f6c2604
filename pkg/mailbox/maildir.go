package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

var maildirSeq atomic.Int64

// DeliverMaildir writes one message into the Maildir at dir (creating
// dir/tmp, new and cur, mode 0770, when missing): into tmp/, fsynced, then
// linked into new/ and the directory fsynced, the rename protocol every
// Maildir reader expects. Line endings become LF, as Maildir readers want.
func DeliverMaildir(dir, hostname string, header []byte, msg io.Reader, now time.Time) error {
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		p := filepath.Join(dir, sub)
		if err := os.Mkdir(p, 0o770); err == nil {
			// Past the umask (the user reads it through group mail), keeping
			// the setgid bit a directory inherits from a setgid parent.
			if fi, err := os.Stat(p); err == nil {
				os.Chmod(p, 0o770|fi.Mode()&os.ModeSetgid)
			}
		} else if !errors.Is(err, os.ErrExist) {
			return temp("maildir %s: %w", dir, err)
		}
	}
	name := fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), maildirSeq.Add(1), safeHost(hostname))
	tmp := filepath.Join(dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o660)
	if err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	f.Chmod(0o660)
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(header), msg), 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasSuffix(line, []byte("\r\n")) {
			w.Write(line[:len(line)-2])
			w.WriteByte('\n')
		} else {
			w.Write(line)
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return temp("maildir %s: %w", dir, err)
		}
	}
	if err := w.Flush(); err != nil {
		return wrapWrite(dir, err)
	}
	if err := f.Sync(); err != nil {
		return wrapWrite(dir, err)
	}
	if err := f.Close(); err != nil {
		return wrapWrite(dir, err)
	}
	if err := os.Link(tmp, filepath.Join(dir, "new", name)); err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	os.Remove(tmp)
	ok = true
	d, err := os.Open(filepath.Join(dir, "new"))
	if err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	return nil
}

// safeHost keeps "/" and ":" out of Maildir file names, encoded as the
// Maildir convention says.
func safeHost(h string) string {
	var b bytes.Buffer
	for _, r := range h {
		switch r {
		case '/':
			b.WriteString(`\057`)
		case ':':
			b.WriteString(`\072`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
