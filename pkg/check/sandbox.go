package check

import (
	"strings"

	"smtp-bs/pkg/sandbox"
)

// sandbox says which confinement the programs will put themselves in on
// this kernel ("landlock ABI 7: file system + network; seccomp: on"),
// and fails when [sandbox] required asks for more than the kernel has:
// every session would be refused.
func (au *auditor) sandbox() {
	sb := au.Config.Sandbox
	if !sb.Enabled {
		au.rep.Notes = append(au.rep.Notes, "sandbox: off ([sandbox] enabled = false): no Landlock, no seccomp filter")
		return
	}
	avail := au.Sandbox
	if avail == nil {
		avail = sandbox.Available
	}
	l := avail()
	switch {
	case l.Full():
		au.ok("sandbox: %s", l)
	case sb.Required:
		au.fail(Config, "", "sandbox: "+l.String()+", but [sandbox] required = true: every session and run would be refused ("+
			strings.Join(l.Missing, "; ")+")", "set [sandbox] required = false, or boot a kernel with Landlock (ABI 4 or later) and seccomp")
	default:
		au.rep.Notes = append(au.rep.Notes, "sandbox: "+l.String()+"; not enforced: "+strings.Join(l.Missing, "; "))
	}
}
