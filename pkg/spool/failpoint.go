//go:build failpoint

package spool

import (
	"os"

	"golang.org/x/sys/unix"

	"smtp-bs/internal/failpoint"
)

// In failpoint builds every OS call through Ops is a point where the crash
// tests can kill the process (see internal/failpoint).
func init() {
	failpointHook = func(o *Ops) {
		create, write, fsync, link, rename, statfs := o.Create, o.Write, o.Fsync, o.Link, o.Rename, o.Statfs
		o.Create = func(p string) (*os.File, error) {
			defer failpoint.Call("spool.create")()
			return create(p)
		}
		o.Write = func(f *os.File, b []byte) (int, error) {
			defer failpoint.Call("spool.write")()
			return write(f, b)
		}
		o.Fsync = func(f *os.File) error {
			defer failpoint.Call("spool.fsync")()
			return fsync(f)
		}
		o.Link = func(a, b string) error {
			defer failpoint.Call("spool.link")()
			return link(a, b)
		}
		o.Rename = func(a, b string) error {
			defer failpoint.Call("spool.rename")()
			return rename(a, b)
		}
		o.Statfs = func(p string, st *unix.Statfs_t) error {
			defer failpoint.Call("spool.statfs")()
			return statfs(p, st)
		}
	}
}
