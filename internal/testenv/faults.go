package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"smtp-bs/pkg/spool"
)

// Faults makes spool.Ops that fail on demand, the unit tests' way to fill
// the disk (ENOSPC) or break it (EIO) at an exact point. It records every
// call, so a test can run an operation once cleanly, then once more for
// each call with that call failing.
type Faults struct {
	mu       sync.Mutex
	calls    []string // "op dir/name", in order
	failAt   int      // 1-based index of the call to fail; 0: none
	failOp   string   // fail every call of this op ("" none)
	err      error
	injected int
	free     int64 // bytes Statfs reports free; < 0: the real value
	Now      func() time.Time
}

// NewFaults returns a Faults that fails nothing yet.
func NewFaults() *Faults { return &Faults{free: -1} }

// FailCall makes call number n (1-based, counted over all ops since the
// last Reset) fail with err.
func (f *Faults) FailCall(n int, err error) {
	f.mu.Lock()
	f.failAt, f.failOp, f.err = n, "", err
	f.mu.Unlock()
}

// FailOp makes every call of op ("create", "write", "fsync", "link",
// "rename", "statfs") fail with err.
func (f *Faults) FailOp(op string, err error) {
	f.mu.Lock()
	f.failAt, f.failOp, f.err = 0, op, err
	f.mu.Unlock()
}

// SetFree makes Statfs report bytes free (< 0: the real value).
func (f *Faults) SetFree(bytes int64) {
	f.mu.Lock()
	f.free = bytes
	f.mu.Unlock()
}

// Reset forgets the calls so far and stops failing.
func (f *Faults) Reset() {
	f.mu.Lock()
	f.calls, f.failAt, f.failOp, f.err = nil, 0, "", nil
	f.mu.Unlock()
}

// Calls returns the calls since the last Reset.
func (f *Faults) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Injected counts the faults injected so far (over all Resets).
func (f *Faults) Injected() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func (f *Faults) hit(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path)))
	if f.err != nil && (f.failAt == len(f.calls) || f.failOp == op) {
		f.injected++
		return f.err
	}
	return nil
}

// Ops returns the seams, calling the real OS unless told to fail.
func (f *Faults) Ops() spool.Ops {
	return spool.Ops{
		Create: func(p string) (*os.File, error) {
			if err := f.hit("create", p); err != nil {
				return nil, &os.PathError{Op: "open", Path: p, Err: err}
			}
			return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		},
		Write: func(fl *os.File, b []byte) (int, error) {
			if err := f.hit("write", fl.Name()); err != nil {
				// A full disk often takes part of a write first.
				n, _ := fl.Write(b[:len(b)/2])
				return n, &os.PathError{Op: "write", Path: fl.Name(), Err: err}
			}
			return fl.Write(b)
		},
		Fsync: func(fl *os.File) error {
			if err := f.hit("fsync", fl.Name()); err != nil {
				return &os.PathError{Op: "sync", Path: fl.Name(), Err: err}
			}
			return fl.Sync()
		},
		Link: func(a, b string) error {
			if err := f.hit("link", b); err != nil {
				return &os.LinkError{Op: "link", Old: a, New: b, Err: err}
			}
			return os.Link(a, b)
		},
		Rename: func(a, b string) error {
			if err := f.hit("rename", b); err != nil {
				return &os.LinkError{Op: "rename", Old: a, New: b, Err: err}
			}
			return os.Rename(a, b)
		},
		Statfs: func(p string, st *unix.Statfs_t) error {
			if err := f.hit("statfs", p); err != nil {
				return &os.PathError{Op: "statfs", Path: p, Err: err}
			}
			if err := unix.Statfs(p, st); err != nil {
				return err
			}
			f.mu.Lock()
			free := f.free
			f.mu.Unlock()
			if free >= 0 {
				st.Bsize = 4096
				st.Bavail = uint64(free / 4096)
			}
			return nil
		},
		Now: f.Now,
	}
}
