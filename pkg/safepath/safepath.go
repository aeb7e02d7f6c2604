// Package safepath opens files and directories below a trusted directory
// without following a symbolic link in any component.
//
// The trusted directory (the spool, the mail spool directory, the Maildir
// root, file_dir) comes from root's config and is opened as named; every
// component below it is opened with openat(O_NOFOLLOW) from the fd of the
// one above, so a link planted by user mail or group mail (who may write
// there) is refused rather than followed, and a rename of a directory
// above cannot redirect a write half-way. openat per component works on
// every kernel; openat2's RESOLVE_NO_SYMLINKS would save system calls but
// needs a fallback on kernels without it, so there is one way only.
package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLink means a component was a symbolic link (or not a directory where
// one was needed): the caller must refuse it, not retry.
var ErrLink = errors.New("is a symbolic link or not a directory: refused")

// Dir is an open directory.
type Dir struct {
	fd   int
	Path string // for messages only
}

// OpenRoot opens the trusted directory path, following links in path
// itself (an admin may point /var/mail elsewhere).
func OpenRoot(path string) (*Dir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return &Dir{fd: fd, Path: path}, nil
}

// Close closes the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// Fd is the directory's descriptor.
func (d *Dir) Fd() int { return d.fd }

// Sync makes the directory's entries durable.
func (d *Dir) Sync() error { return unix.Fsync(d.fd) }

// components splits rel into names, refusing ".." and absolute paths.
func components(rel string) ([]string, error) {
	if strings.HasPrefix(rel, "/") {
		return nil, fmt.Errorf("%s: not a relative path", rel)
	}
	var out []string
	for _, c := range strings.Split(rel, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("%s: \"..\" refused", rel)
		}
		out = append(out, c)
	}
	return out, nil
}

// Sub opens the directory rel below d, component by component. With
// create, a missing component is made with exactly mode (past the umask),
// keeping a setgid bit it inherits from its parent.
func (d *Dir) Sub(rel string, create bool, mode uint32) (*Dir, error) {
	names, err := components(rel)
	if err != nil {
		return nil, err
	}
	cur, path := d.fd, d.Path
	closeCur := func() {
		if cur != d.fd {
			unix.Close(cur)
		}
	}
	for _, name := range names {
		path = filepath.Join(path, name)
		fd, err := openDir(cur, name)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, name, mode); err == nil || errors.Is(err, unix.EEXIST) {
				made := err == nil
				fd, err = openDir(cur, name)
				if made && err == nil {
					var st unix.Stat_t
					if unix.Fstat(fd, &st) == nil {
						unix.Fchmod(fd, mode|st.Mode&unix.S_ISGID)
					}
				}
			}
		}
		closeCur()
		if err != nil {
			return nil, pathErr(path, err)
		}
		cur = fd
	}
	if cur == d.fd {
		fd, err := unix.Dup(d.fd)
		if err != nil {
			return nil, pathErr(path, err)
		}
		unix.CloseOnExec(fd)
		cur = fd
	}
	return &Dir{fd: cur, Path: path}, nil
}

func openDir(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// pathErr names a link (ELOOP, or ENOTDIR from O_DIRECTORY on a link) as
// ErrLink, which callers treat as permanent.
func pathErr(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s %w", path, ErrLink)
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// OpenFile opens name, one component, in d without following a link.
func (d *Dir) OpenFile(name string, flag int, mode uint32) (*os.File, error) {
	p := filepath.Join(d.Path, name)
	if strings.Contains(name, "/") || name == ".." || name == "." || name == "" {
		return nil, fmt.Errorf("%s: not one file name", p)
	}
	fd, err := unix.Openat(d.fd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%s %w", p, ErrLink)
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// Lstat describes name in d without following a link.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &fs.PathError{Op: "lstat", Path: filepath.Join(d.Path, name), Err: err}
	}
	return st, nil
}

// Remove unlinks the file name in d.
func (d *Dir) Remove(name string) error {
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "unlink", Path: filepath.Join(d.Path, name), Err: err}
	}
	return nil
}

// Link makes to/newname a hard link of d/oldname (never of a link's target).
func (d *Dir) Link(oldname string, to *Dir, newname string) error {
	if err := unix.Linkat(d.fd, oldname, to.fd, newname, 0); err != nil {
		return &fs.PathError{Op: "link", Path: filepath.Join(to.Path, newname), Err: err}
	}
	return nil
}

// IsLink reports whether err is a refused link.
func IsLink(err error) bool { return errors.Is(err, ErrLink) }
