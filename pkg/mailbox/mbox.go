// Package mailbox delivers mail on this host without root: appending to
// mbox files in the mail spool directory as group mail (the old guides'
// /var/mail root:mail 1775, mailboxes USER:mail 0660), writing Maildirs,
// handing off to an LMTP server, or piping to an allow-listed program.
//
// Every writer reports temporary and permanent failures apart (Temp), and
// a message counts as delivered only after it is fsynced.
package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"smtp-bs/pkg/safepath"
)

// Temp marks a failure worth another try (a lock held too long, a full disk).
type Temp struct{ Err error }

func (t *Temp) Error() string { return t.Err.Error() }
func (t *Temp) Unwrap() error { return t.Err }

func temp(format string, a ...any) error { return &Temp{Err: fmt.Errorf(format, a...)} }

// IsTemp reports whether err is worth another try.
func IsTemp(err error) bool {
	var t *Temp
	return errors.As(err, &t)
}

// Locking as mutt and procmail do it: a dot-lock file next to the mailbox,
// then flock and fcntl on the mailbox itself.
const (
	lockTries = 20
	lockPause = 250 * time.Millisecond
	// A dot-lock older than this was left by a crashed writer (procmail
	// and mutt use the same rule).
	staleLock = 5 * time.Minute
)

// MboxOptions say how to append.
type MboxOptions struct {
	UID       int  // the mailbox owner, for a new file and the ownership check; -1: any
	NoDotLock bool // for file targets in directories we may not write
	// LockWait is how long to wait for another program's locks; 0 means 5s.
	LockWait time.Duration
}

// AppendMbox appends one message to the mbox file rel below the trusted
// directory root: a "From " line, then the message with LF line endings
// and ">From " quoting (mboxrd), then a blank line. A failed append is
// rolled back to the old size. No component below root is followed if it
// is a symbolic link (see package safepath).
func AppendMbox(root, rel string, o MboxOptions, from string, header []byte, msg io.Reader, now time.Time) (err error) {
	path := filepath.Join(root, rel)
	tries := lockTries
	if o.LockWait > 0 {
		tries = int(o.LockWait / lockPause)
	}
	top, err := safepath.OpenRoot(root)
	if err != nil {
		return temp("mbox %s: %w", path, err)
	}
	defer top.Close()
	dir, err := top.Sub(filepath.Dir(rel), false, 0)
	if err != nil {
		if safepath.IsLink(err) {
			return fmt.Errorf("5.2.0 mbox %s: %w", path, err)
		}
		return temp("mbox %s: %w", path, err)
	}
	defer dir.Close()
	name := filepath.Base(rel)
	if !o.NoDotLock {
		unlock, err := dotLock(dir, name+".lock", tries)
		if err != nil {
			return err
		}
		defer unlock()
	}
	f, created, err := openMbox(dir, name, o.UID)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockFile(f, tries); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return temp("mbox %s: %w", path, err)
	}
	size := fi.Size()
	defer func() {
		if err != nil {
			// Leave the mailbox as it was: a half message would corrupt it.
			f.Truncate(size)
			f.Sync()
			if created && size == 0 {
				dir.Remove(name)
			}
		}
	}()
	w := bufio.NewWriterSize(f, 64<<10)
	if size > 0 {
		// mbox needs an empty line before each "From "; add one if the
		// last writer forgot it.
		last := make([]byte, 2)
		if n, _ := f.ReadAt(last, size-2); n == 2 && !bytes.Equal(last, []byte("\n\n")) {
			if last[1] == '\n' {
				w.WriteString("\n")
			} else {
				w.WriteString("\n\n")
			}
		}
	}
	if from == "" {
		from = "MAILER-DAEMON"
	}
	fmt.Fprintf(w, "From %s %s\n", from, now.Format("Mon Jan _2 15:04:05 2006"))
	if err := copyMboxrd(w, io.MultiReader(bytes.NewReader(header), msg)); err != nil {
		return temp("mbox %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		return wrapWrite(path, err)
	}
	if err := f.Sync(); err != nil {
		return wrapWrite(path, err)
	}
	return nil
}

func wrapWrite(path string, err error) error {
	if errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("5.2.2 mailbox %s is full: %w", path, err)
	}
	return temp("mbox %s: %w", path, err)
}

// copyMboxrd writes msg with CRLF turned into LF and every line that
// matches ^>*From  quoted with one more ">", ending in "\n\n".
func copyMboxrd(w *bufio.Writer, msg io.Reader) error {
	br := bufio.NewReaderSize(msg, 64<<10)
	lastNL := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			body := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
			if bytes.HasPrefix(bytes.TrimLeft(body, ">"), []byte("From ")) {
				w.WriteByte('>')
			}
			w.Write(body)
			if line[len(line)-1] == '\n' {
				w.WriteByte('\n')
				if len(body) == 0 {
					lastNL++
				} else {
					lastNL = 1
				}
			} else {
				lastNL = 0
			}
		}
		if err == bufio.ErrBufferFull {
			// A very long line: keep copying it in pieces.
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	for ; lastNL < 2; lastNL++ {
		w.WriteByte('\n')
	}
	return nil
}

// openMbox opens (or creates, 0660) a mailbox, refusing the tricks a user
// could play with the name: symlinks, hard links, files of someone else.
func openMbox(dir *safepath.Dir, name string, uid int) (*os.File, bool, error) {
	path := filepath.Join(dir.Path, name)
	created := false
	f, err := dir.OpenFile(name, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = dir.OpenFile(name, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o660)
		created = err == nil
		if created {
			f.Chmod(0o660) // whatever the umask: the user reads it through group mail
		}
		if created && uid >= 0 {
			// Only root may give the file to its user; without that it
			// stays ours (group mail) and -check says how to fix it.
			f.Chown(uid, -1)
		}
	}
	if err != nil {
		if safepath.IsLink(err) {
			return nil, false, fmt.Errorf("5.2.0 mailbox %s is a symbolic link: refused", path)
		}
		return nil, false, temp("mbox %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, false, temp("mbox %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		f.Close()
		return nil, false, fmt.Errorf("5.2.0 mailbox %s is not a regular file: refused", path)
	case st.Nlink != 1:
		f.Close()
		return nil, false, fmt.Errorf("5.2.0 mailbox %s has %d hard links: refused", path, st.Nlink)
	case uid >= 0 && int(st.Uid) != uid && int(st.Uid) != os.Geteuid():
		f.Close()
		return nil, false, fmt.Errorf("5.2.0 mailbox %s belongs to uid %d, not its user: refused", path, st.Uid)
	}
	return f, created, nil
}

// lockFile takes flock and fcntl write locks, waiting a bounded time.
func lockFile(f *os.File, tries int) error {
	fd := int(f.Fd())
	for i := 0; ; i++ {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if i >= tries {
			return temp("mailbox %s is locked (flock) by another program", f.Name())
		}
		time.Sleep(lockPause)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	for i := 0; ; i++ {
		err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk)
		if err == nil {
			return nil
		}
		if i >= tries {
			return temp("mailbox %s is locked (fcntl) by another program", f.Name())
		}
		time.Sleep(lockPause)
	}
}

// dotLock creates name in dir exclusively; a lock older than staleLock is
// taken over. It returns the function that removes the lock.
func dotLock(dir *safepath.Dir, name string, tries int) (func(), error) {
	path := filepath.Join(dir.Path, name)
	for i := 0; ; i++ {
		f, err := dir.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { dir.Remove(name) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			if errors.Is(err, os.ErrPermission) {
				return nil, temp("cannot create the lock %s (is %s writable by group mail?): %w", path, dir.Path, err)
			}
			return nil, temp("lock %s: %w", path, err)
		}
		if st, err := dir.Lstat(name); err == nil && (time.Since(time.Unix(st.Mtim.Unix())) > staleLock || deadHolder(dir, name)) {
			dir.Remove(name)
			continue
		}
		if i >= tries {
			return nil, temp("mailbox is locked by another program (%s)", path)
		}
		time.Sleep(lockPause)
	}
}

// deadHolder reports whether a dot-lock names, as its content, the pid of
// a process that no longer exists (we write ours; so does procmail's
// lockfile). A lock without a pid only goes stale by age.
func deadHolder(dir *safepath.Dir, name string) bool {
	f, err := dir.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 33)
	n, _ := io.ReadFull(f, b)
	if n > 32 {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 1 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// localHeader is what final delivery adds on top (RFC 5321 4.4).
func localHeader(from, rcpt string) []byte {
	return []byte(fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", from, strings.ReplaceAll(rcpt, "\n", "")))
}
