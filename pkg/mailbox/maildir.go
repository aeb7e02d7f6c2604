package mailbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"smtp-bs/pkg/safepath"
)

var maildirSeq atomic.Int64

// DeliverMaildir writes one message into the Maildir name below root
// (creating name/ and its tmp, new and cur, mode 0770, when missing):
// into tmp/, fsynced, then linked into new/ and the directory fsynced, the
// rename protocol every Maildir reader expects. Line endings become LF, as
// Maildir readers want. No component below root may be a symbolic link:
// group mail can write in root, so a link there could send the message
// anywhere mail may write (the spool included).
func DeliverMaildir(root, name, hostname string, header []byte, msg io.Reader, now time.Time) error {
	dir := filepath.Join(root, name)
	top, err := safepath.OpenRoot(root)
	if err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	defer top.Close()
	md, err := top.Sub(name, true, 0o770)
	if err != nil {
		return maildirErr(dir, err)
	}
	defer md.Close()
	subs := map[string]*safepath.Dir{}
	for _, sub := range []string{"tmp", "new", "cur"} {
		d, err := md.Sub(sub, true, 0o770)
		if err != nil {
			return maildirErr(dir, err)
		}
		defer d.Close()
		subs[sub] = d
	}
	tmpDir, newDir := subs["tmp"], subs["new"]
	file := fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, os.Getpid(), maildirSeq.Add(1), safeHost(hostname))
	f, err := tmpDir.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o660)
	if err != nil {
		return maildirErr(dir, err)
	}
	f.Chmod(0o660)
	ok := false
	defer func() {
		if !ok {
			f.Close()
			tmpDir.Remove(file)
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
	if err := tmpDir.Link(file, newDir, file); err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	tmpDir.Remove(file)
	ok = true
	if err := newDir.Sync(); err != nil {
		return temp("maildir %s: %w", dir, err)
	}
	return nil
}

// maildirErr makes a refused link permanent: retrying cannot help, and
// the admin must look (the -check audit names it).
func maildirErr(dir string, err error) error {
	if safepath.IsLink(err) {
		return fmt.Errorf("5.2.0 maildir %s: %w", dir, err)
	}
	return temp("maildir %s: %w", dir, err)
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
