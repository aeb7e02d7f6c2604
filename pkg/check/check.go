// Package check audits an installation of smtp-bs and reports what is
// wrong, each finding with the exact command that fixes it.
//
// It checks what the old hardening guides had admins check by hand: the
// run user exists, is not root and has no login shell; the spool and
// everything in it belong to the run user with no group or world access;
// the lockfile likewise; the config is readable by the run user and
// writable only by root (root:mail 0640), in a directory only root may
// change (root:mail 0750); the binaries are root's, not writable by the run
// user and without setuid or setgid bits; the files the config names are
// as they should be (hosts.allow and hosts.deny, aliases and certificate
// root's and readable by the run user; the TLS key and AUTH credentials
// secrets of root and the run user's group; the smarthost password the run
// user's alone; the |program directory root's); and no directory above any
// of these can be changed by anyone but root.
//
// An audit only reads: it never changes a file. It works as root and as the
// run user (both programs run it before they drop privileges); as any other
// user it reports what it could not look at.
package check

import (
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/privilege"
	"smtp-bs/pkg/sandbox"
	"smtp-bs/pkg/spool"
	"smtp-bs/pkg/sysexits"
	"smtp-bs/pkg/tcpwrap"
)

// Kind says which exit code a finding leads to.
type Kind int

const (
	// Permission problems: owners, modes, the run user's account. Exit 77.
	Permission Kind = iota + 1
	// Config problems: a config that does not load, a run user that does
	// not exist or is root, a spool that was never created. Exit 78.
	Config
)

// Finding is one thing wrong with the installation.
type Finding struct {
	Kind Kind
	// Path is the file or directory concerned; "" for the run user.
	Path string
	// Problem says what is wrong, in words an admin can act on.
	Problem string
	// Fix is a shell command that fixes it, to be run as root.
	Fix string
}

// Report is the outcome of an audit.
type Report struct {
	Findings []Finding
	// OK lists what was checked and found right, for the admin's eyes.
	OK []string
	// Notes are facts worth knowing that are not problems.
	Notes []string
}

// Exit is the exit status for the report: 0 when nothing is wrong, 78 when
// any finding is a config problem (the rest of the audit may rest on a
// wrong premise), else 77.
func (r *Report) Exit() int {
	code := sysexits.OK
	for _, f := range r.Findings {
		if f.Kind == Config {
			return sysexits.Config
		}
		code = sysexits.NoPerm
	}
	return code
}

// Write prints the report for a person: what is fine, then each problem
// with its fix, then a summary line.
func (r *Report) Write(w io.Writer, prog string) {
	for _, s := range r.Notes {
		fmt.Fprintf(w, "note  %s\n", s)
	}
	for _, s := range r.OK {
		fmt.Fprintf(w, "ok    %s\n", s)
	}
	for _, f := range r.Findings {
		what := f.Problem
		if f.Path != "" {
			what = f.Path + ": " + what
		}
		fmt.Fprintf(w, "FAIL  %s\n", what)
		if f.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", f.Fix)
		}
	}
	switch n := len(r.Findings); n {
	case 0:
		fmt.Fprintf(w, "%s -check: all is well\n", prog)
	case 1:
		fmt.Fprintf(w, "%s -check: 1 problem (exit %d)\n", prog, r.Exit())
	default:
		fmt.Fprintf(w, "%s -check: %d problems (exit %d)\n", prog, n, r.Exit())
	}
}

// Audit describes the installation to check.
type Audit struct {
	Config *config.Config
	// ConfigPath is the file Config came from; "" when no file exists and
	// the embedded defaults are in use.
	ConfigPath string
	// Binaries are the installed programs (smtp-bs, qrun); missing ones
	// are skipped.
	Binaries []string
	// Qrun is the path of the qrun binary, for fixes; "" means "qrun".
	Qrun string

	// ProbeResolver asks whether the resolver validates DNSSEC, for DANE
	// (tlspolicy.ProbeResolver). qrun, which delivers, passes it; smtp-bs
	// does not, so that its per-connection binary does not link the
	// delivery side's DNS and HTTPS code.
	ProbeResolver ResolverProbe

	// Lookup resolves the run user; nil means privilege.Lookup.
	Lookup func(name string) (*privilege.Identity, error)
	// PasswdFile is where the run user's login shell is read; "" means
	// /etc/passwd.
	PasswdFile string
	// Sandbox reports the confinement this kernel allows; nil means
	// sandbox.Available.
	Sandbox func() sandbox.Level
}

// auditor carries one run of an audit.
type auditor struct {
	*Audit
	id       *who // nil when the run user could not be resolved
	rep      Report
	chained  map[string]bool // directories whose ancestry was checked
	reported map[string]bool // paths with a finding
}

// Run performs the audit. It changes nothing.
func (a *Audit) Run() *Report {
	au := &auditor{Audit: a, chained: map[string]bool{}, reported: map[string]bool{}}
	if au.Lookup == nil {
		au.Lookup = privilege.Lookup
	}
	if au.PasswdFile == "" {
		au.PasswdFile = "/etc/passwd"
	}
	au.runUser()
	au.configFile()
	au.spool()
	for _, b := range a.Binaries {
		au.binary(b)
	}
	au.tcpwrap()
	au.authFile()
	au.files()
	au.milters()
	au.chroot()
	au.sandbox()
	au.tlsPolicy()
	return &au.rep
}

func (au *auditor) fail(k Kind, path, problem, fix string) {
	au.reported[path] = true
	au.rep.Findings = append(au.rep.Findings, Finding{Kind: k, Path: path, Problem: problem, Fix: fix})
}

func (au *auditor) ok(format string, a ...any) {
	au.rep.OK = append(au.rep.OK, fmt.Sprintf(format, a...))
}

func (au *auditor) note(format string, a ...any) {
	au.rep.Notes = append(au.rep.Notes, fmt.Sprintf(format, a...))
}

// qrun is the qrun command in fixes.
func (au *auditor) qrun() string {
	if au.Qrun == "" {
		return "qrun"
	}
	return quote(au.Qrun)
}

// cfgArg is the -config argument for commands in fixes.
func (au *auditor) cfgArg() string {
	if au.ConfigPath == "" {
		return ""
	}
	return " -config " + quote(au.ConfigPath)
}

// runUser: exists, is not root, has no login shell.
func (au *auditor) runUser() {
	name := au.Config.RunAs
	id, err := au.Lookup(name)
	if err != nil {
		au.fail(Config, "", fmt.Sprintf("run_as user %q does not exist (%v)", name, err),
			"useradd --system --user-group --home-dir /nonexistent --shell "+nologin()+" "+quote(name))
		return
	}
	if id.UID == 0 {
		au.fail(Config, "", fmt.Sprintf("run_as user %q is root (uid 0): smtp-bs must never run as root", name),
			fmt.Sprintf("edit %s: set run_as = \"mail\"", orDefault(au.ConfigPath, config.DefaultPath)))
		return
	}
	au.id = &who{id}
	shell, found, err := loginShell(au.PasswdFile, id.Name)
	switch {
	case err != nil || !found:
		au.note("run user %s (uid %d): not in %s, login shell not checked", id.Name, id.UID, au.PasswdFile)
	case !noLogin(shell):
		au.fail(Permission, "", fmt.Sprintf("run user %s has a login shell (%s): whoever takes over a session could log in as %s",
			id.Name, orDefault(shell, "empty, i.e. /bin/sh"), id.Name),
			"usermod --shell "+nologin()+" "+quote(id.Name))
	default:
		au.ok("run user %s: uid %d, gid %d, no login shell (%s)", id.Name, id.UID, id.GID, shell)
	}
}

// configFile: root-owned, not writable by group or others, readable by the
// run user but not by everyone; its directory root's and searchable by the
// run user.
func (au *auditor) configFile() {
	if au.ConfigPath == "" {
		au.note("no config file at %s: the embedded defaults are in use", config.DefaultPath)
		return
	}
	path := au.real(au.ConfigPath)
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		// -config /dev/null (scripts/run-local.sh) means "all defaults":
		// there is no file to own, and no fix to give for a device.
		au.note("config %s is not a regular file (%v): the embedded defaults are in use", path, fi.Mode().Type())
		return
	}
	dir := filepath.Dir(path)
	au.chained[dir] = true // checked here, with the config's own rules
	au.ancestry(filepath.Dir(dir))
	group := au.groupName()
	if st, ok := au.stat(dir); ok {
		var bad []string
		if st.Uid != 0 {
			bad = append(bad, fmt.Sprintf("owned by %s, who can replace the config", owner(st)))
		}
		if st.Mode&0o022 != 0 {
			bad = append(bad, fmt.Sprintf("writable by group or others (mode %s), who can replace the config", perm(st)))
		}
		if au.id != nil && !au.id.can(st, 0o1) {
			bad = append(bad, fmt.Sprintf("%s cannot enter it (%s %s), so cannot read the config", au.id.Name, owner(st), perm(st)))
		}
		if len(bad) > 0 {
			au.fail(Permission, dir, strings.Join(bad, "; "),
				fmt.Sprintf("chown root:%s %s && chmod 0750 %s", group, quote(dir), quote(dir)))
		} else {
			au.ok("config directory %s: %s %s", dir, owner(st), perm(st))
		}
	}
	st, ok := au.stat(path)
	if !ok {
		return
	}
	var bad []string
	if st.Uid != 0 {
		bad = append(bad, fmt.Sprintf("owned by %s, not root: the owner can change it", owner(st)))
	}
	if st.Mode&0o022 != 0 {
		bad = append(bad, fmt.Sprintf("writable by group or others (mode %s): only root may change it", perm(st)))
	}
	if au.id != nil && !au.id.can(st, 0o4) {
		bad = append(bad, fmt.Sprintf("%s cannot read it (%s %s)", au.id.Name, owner(st), perm(st)))
	}
	if st.Mode&0o004 != 0 {
		bad = append(bad, fmt.Sprintf("readable by everyone (mode %s): it is for root and %s only", perm(st), group))
	}
	if len(bad) > 0 {
		au.fail(Permission, path, strings.Join(bad, "; "),
			fmt.Sprintf("chown root:%s %s && chmod 0640 %s", group, quote(path), quote(path)))
		return
	}
	au.ok("config %s: %s %s", path, owner(st), perm(st))
}

// spool: the directory, its subdirectories and every file below belong to
// the run user, with no group or world access; the lockfile too.
func (au *auditor) spool() {
	dir := au.real(au.Config.Spool.Dir)
	au.ancestry(filepath.Dir(dir))
	fi, err := os.Stat(dir)
	if os.IsNotExist(err) {
		au.fail(Config, dir, "the spool does not exist", au.qrun()+au.cfgArg()+" -init")
		return
	}
	st, ok := au.stat(dir)
	if !ok {
		return
	}
	if !fi.IsDir() {
		au.fail(Config, dir, "the spool is not a directory", "mv "+quote(dir)+" "+quote(dir+".old")+" && "+au.qrun()+au.cfgArg()+" -init")
		return
	}
	au.spoolDir(dir, st, "spool")
	var missing []string
	for _, sub := range spool.Subdirs() {
		p := filepath.Join(dir, sub)
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			missing = append(missing, sub)
			continue
		}
		if st, ok := au.lstat(p); ok {
			au.spoolDir(p, st, "spool directory")
		}
	}
	if len(missing) > 0 {
		au.fail(Config, dir, "incomplete spool: missing "+strings.Join(missing, ", "), au.qrun()+au.cfgArg()+" -init")
	}
	au.spoolFiles(dir)
	au.lockfile(filepath.Join(dir, "lock"))
}

// spoolDir checks one directory of the spool.
func (au *auditor) spoolDir(p string, st *syscall.Stat_t, what string) {
	var bad, fix []string
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		au.fail(Permission, p, "not a directory (a symlink or other file where the spool expects a directory)",
			"mv "+quote(p)+" "+quote(p+".old")+" && "+au.qrun()+au.cfgArg()+" -init")
		return
	}
	if au.id != nil && (int(st.Uid) != au.id.UID || int(st.Gid) != au.id.GID) {
		bad = append(bad, fmt.Sprintf("owned by %s, not %s:%s", owner(st), au.id.Name, au.groupName()))
		fix = append(fix, fmt.Sprintf("chown -R %s:%s %s", au.id.Name, au.groupName(), quote(p)))
	}
	switch {
	case st.Mode&0o077 != 0:
		bad = append(bad, fmt.Sprintf("group or others have access (mode %s, want 0700): only the run user may read mail", perm(st)))
	case st.Mode&0o700 != 0o700 || st.Mode&0o7000 != 0:
		bad = append(bad, fmt.Sprintf("mode %s, want 0700", perm(st)))
	}
	if st.Mode&0o077 != 0 || st.Mode&0o700 != 0o700 || st.Mode&0o7000 != 0 {
		fix = append(fix, "chmod u=rwx,go=,ug-s,-t "+quote(p))
	}
	if len(bad) > 0 {
		au.fail(Permission, p, strings.Join(bad, "; "), strings.Join(fix, " && "))
		return
	}
	if what == "spool" {
		au.ok("spool %s: %s %s", p, owner(st), perm(st))
	}
}

// spoolFiles walks the spool's subdirectories and reports, per
// subdirectory, files owned by someone else and files others may read.
func (au *auditor) spoolFiles(dir string) {
	for _, sub := range spool.Subdirs() {
		top := filepath.Join(dir, sub)
		var foreign, open []string
		n := 0
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == top && os.IsNotExist(err) {
					return filepath.SkipDir
				}
				return err
			}
			if p == top {
				return nil
			}
			st, ok := au.lstat(p)
			if !ok {
				return nil
			}
			n++
			if au.id != nil && (int(st.Uid) != au.id.UID || int(st.Gid) != au.id.GID) {
				foreign = append(foreign, fmt.Sprintf("%s (%s)", p, owner(st)))
			}
			if st.Mode&0o077 != 0 || st.Mode&0o6000 != 0 {
				open = append(open, fmt.Sprintf("%s (mode %s)", p, perm(st)))
			}
			return nil
		})
		if err != nil {
			if au.reported[top] || os.IsPermission(err) && au.parentReported(top) {
				continue // its owner or mode is wrong; the fix for that comes first
			}
			au.fail(Permission, top, fmt.Sprintf("cannot look inside as %s (%v): run -check as root", whoami(), err), "")
			continue
		}
		if len(foreign) > 0 && au.id != nil {
			au.fail(Permission, top, fmt.Sprintf("%s not owned by %s:%s, e.g. %s", count(len(foreign), "file"),
				au.id.Name, au.groupName(), foreign[0]),
				fmt.Sprintf("chown -R %s:%s %s", au.id.Name, au.groupName(), quote(top)))
		}
		if len(open) > 0 {
			au.fail(Permission, top, fmt.Sprintf("%s with group or world access, e.g. %s", count(len(open), "file"), open[0]),
				"chmod -R go=,ug-s "+quote(top))
		}
		if len(foreign) == 0 && len(open) == 0 && n > 0 {
			au.ok("%s: %s, all private to the run user", top, count(n, "file"))
		}
	}
}

// lockfile: absent is fine (qrun creates it); present, it is the run
// user's, mode 0600, and a regular file.
func (au *auditor) lockfile(p string) {
	if _, err := os.Lstat(p); os.IsNotExist(err) {
		au.note("no lockfile %s yet: the first qrun creates it", p)
		return
	}
	st, ok := au.lstat(p)
	if !ok {
		return
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		au.fail(Permission, p, "the lockfile is not a regular file (a symlink could make qrun open anything)", "rm "+quote(p))
		return
	}
	var bad []string
	if au.id != nil && (int(st.Uid) != au.id.UID || int(st.Gid) != au.id.GID) {
		bad = append(bad, fmt.Sprintf("owned by %s, not %s:%s: qrun cannot take the lock", owner(st), au.id.Name, au.groupName()))
	}
	if st.Mode&0o7077 != 0 {
		bad = append(bad, fmt.Sprintf("mode %s, not 0600", perm(st)))
	}
	if len(bad) > 0 && au.id != nil {
		au.fail(Permission, p, strings.Join(bad, "; "),
			fmt.Sprintf("chown %s:%s %s && chmod 0600 %s", au.id.Name, au.groupName(), quote(p), quote(p)))
		return
	}
	au.ok("lockfile %s: %s %s", p, owner(st), perm(st))
}

// binary: root's, not writable by group, others or the run user, no setuid
// or setgid bit; its directory and those above it root's too.
func (au *auditor) binary(path string) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		au.note("%s not found: not checked", path)
		return
	}
	path = au.real(path)
	au.ancestry(filepath.Dir(path))
	st, ok := au.stat(path)
	if !ok {
		return
	}
	var bad []string
	if st.Mode&0o6000 != 0 {
		bad = append(bad, fmt.Sprintf("setuid or setgid bit set (mode %s): nothing of smtp-bs may carry one", perm(st)))
	}
	if st.Uid != 0 {
		bad = append(bad, fmt.Sprintf("owned by %s, not root: the owner can replace it", owner(st)))
	}
	if st.Mode&0o022 != 0 {
		bad = append(bad, fmt.Sprintf("writable by group or others (mode %s)", perm(st)))
	}
	if len(bad) > 0 {
		au.fail(Permission, path, strings.Join(bad, "; "),
			fmt.Sprintf("chown root:root %s && chmod 0755 %s", quote(path), quote(path)))
		return
	}
	au.ok("binary %s: %s %s", path, owner(st), perm(st))
}

// tcpwrap: the rule files, when they exist, are readable by the run user
// (an unreadable file counts as empty: every client would get in) and
// writable by root alone (anyone else could let anyone in).
func (au *auditor) tcpwrap() {
	if !au.Config.TCPWrap.Enabled {
		return
	}
	for _, p := range []string{au.Config.TCPWrap.AllowFile, au.Config.TCPWrap.DenyFile} {
		au.rootFile("tcpwrap rules", p, false, true)
		// Rules libwrap skips in silence, as tcpdchk reports them.
		probs, _ := tcpwrap.Lint(p)
		for _, pr := range probs {
			au.fail(Config, fmt.Sprintf("%s:%d", pr.File, pr.Line), pr.Msg,
				fmt.Sprintf("${EDITOR:-vi} +%d %s   # a rule is: daemon_list : client_list [: options]", pr.Line, pr.File))
		}
	}
}

// files: what the config names besides the spool. Root's files the run
// user reads: the aliases (whoever changes them redirects mail), the TLS
// certificate; and secrets, readable by root and the run user's group
// only: the TLS key and the AUTH credentials. The program directory of
// |program aliases is root's alone: whoever can put a program there makes
// mail run it.
func (au *auditor) files() {
	c := au.Config
	au.rootFile("TLS certificate", c.TLS.CertFile, false, false)
	au.rootFile("TLS key", c.TLS.KeyFile, true, false)
	au.tlsPair()
	au.rootFile("AUTH credentials", c.Auth.CredentialsFile, true, false)
	if len(c.Local.Domains) == 0 {
		return // no local delivery: aliases and programs are not used
	}
	au.rootFile("aliases", c.Local.Aliases, false, true)
	if c.Local.Mailbox == "mbox" {
		au.mailSpool(c.Local.MailSpool)
	}
	if d := c.Local.ProgramDir; d != "" {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			au.note("program_dir %s does not exist: no |program alias can run", d)
			return
		}
		d = au.real(d)
		au.ancestry(d)
		ents, err := os.ReadDir(d)
		if err != nil {
			au.fail(Permission, d, fmt.Sprintf("cannot list it as %s (%v)", whoami(), err), "")
			return
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if st, ok := au.lstat(p); ok && (st.Uid != 0 || st.Mode&0o022 != 0) {
				au.fail(Permission, p, fmt.Sprintf("%s %s: someone but root can change a program mail runs", owner(st), perm(st)),
					fmt.Sprintf("chown root:root %s && chmod go-w %s", quote(p), quote(p)))
			}
		}
		au.ok("program_dir %s: root's, %s", d, count(len(ents), "program"))
	}
}

// tlsPair parses the certificate and key in full. smtp-bs itself only
// checks their PEM blocks at connect and parses them at a client's
// STARTTLS, so a pair with bad DER, or a key that does not match the
// certificate, shows up here first. Missing files are rootFile's.
func (au *auditor) tlsPair() {
	t := au.Config.TLS
	if !t.HasTLS() {
		return
	}
	for _, p := range []string{t.CertFile, t.KeyFile} {
		if _, err := os.Stat(p); err != nil {
			return
		}
	}
	if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
		au.fail(Config, t.CertFile, fmt.Sprintf("the TLS pair with key_file %s does not load (%v): every STARTTLS would fail", t.KeyFile, err), "")
		return
	}
	au.ok("TLS pair %s, %s: loads", t.CertFile, t.KeyFile)
}

// mailSpool: the old guides' /var/mail, root's with group mail able to
// write (root:mail 2775 on Debian, or 1775), never open to everyone
// without the sticky bit; each mailbox USER:mail 0660.
func (au *auditor) mailSpool(dir string) {
	if au.id == nil {
		return
	}
	st, ok := au.stat(dir)
	if !ok {
		au.fail(Config, dir, "the mail spool directory ([local] mail_spool) does not exist",
			fmt.Sprintf("install -d -o root -g %s -m 2775 %s", au.groupName(), quote(dir)))
		return
	}
	var bad []string
	if st.Uid != 0 {
		bad = append(bad, "not owned by root")
	}
	if !au.id.can(st, 0o2) || !au.id.can(st, 0o1) {
		bad = append(bad, fmt.Sprintf("%s cannot create mailboxes and lock files in it", au.id.Name))
	}
	if st.Mode&0o002 != 0 && st.Mode&0o1000 == 0 {
		bad = append(bad, "world-writable without the sticky bit")
	}
	if len(bad) > 0 {
		au.fail(Permission, dir, fmt.Sprintf("%s (%s %s)", strings.Join(bad, "; "), owner(st), perm(st)),
			fmt.Sprintf("chown root:%s %s && chmod 2775 %s", au.groupName(), quote(dir), quote(dir)))
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		au.fail(Permission, dir, fmt.Sprintf("cannot list it as %s (%v)", whoami(), err), "")
		return
	}
	n := 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fst, ok := au.lstat(p)
		if !ok {
			continue
		}
		if strings.HasSuffix(e.Name(), ".lock") && fst.Mode&syscall.S_IFMT == syscall.S_IFREG {
			continue // a writer's dot-lock
		}
		n++
		au.mailbox(dir, e.Name(), fst)
	}
	au.ok("mail spool %s: %s %s, %s checked", dir, owner(st), perm(st), count(n, "entry"))
}

// mailbox audits one entry of the mail spool directory. Delivery refuses
// a mailbox that is not a regular file, has more than one link, or
// belongs to another user; each fix here is one that cannot hand a
// mailbox to someone else: a chown is offered only for a single-link
// file that is no user's yet (root's or the run user's), and anything
// else is removed (a link's name) or moved aside into a root-only
// directory next to the spool for a person to look at.
func (au *auditor) mailbox(dir, name string, st *syscall.Stat_t) {
	p := filepath.Join(dir, name)
	asideDir := dir + ".aside"
	aside := fmt.Sprintf("install -d -m 0700 %s && mv --backup=numbered -- %s %s/", quote(asideDir), quote(p), quote(asideDir))
	refused := "delivery refuses it"
	switch typ := st.Mode & syscall.S_IFMT; {
	case typ == syscall.S_IFLNK:
		au.fail(Permission, p, "mailbox is a symbolic link; "+refused, "rm -- "+quote(p))
		return
	case typ == syscall.S_IFDIR:
		au.fail(Permission, p, "mailbox is a directory; "+refused, aside)
		return
	case typ != syscall.S_IFREG:
		au.fail(Permission, p, fmt.Sprintf("mailbox is not a regular file (%s); %s", fileType(typ), refused), aside)
		return
	}
	u, err := au.Lookup(name)
	if err != nil {
		au.note("%s: no user %s owns this mailbox", p, name)
		return
	}
	switch {
	case st.Nlink > 1 && int(st.Uid) == u.UID:
		// The user's own file with another name elsewhere: give the user
		// a fresh single-link copy; the other names keep the old one.
		tmp := p + ".unlinked"
		au.fail(Permission, p, fmt.Sprintf("mailbox has %d hard links: another name reaches %s's mail; %s", st.Nlink, name, refused),
			fmt.Sprintf("cp -p -- %s %s && mv -- %s %s", quote(p), quote(tmp), quote(tmp), quote(p)))
	case st.Nlink > 1:
		// A name for someone else's file: removing the name loses no mail.
		au.fail(Permission, p, fmt.Sprintf("mailbox has %d hard links and belongs to %s, not %s: a link to another mailbox; %s", st.Nlink, userName(st.Uid), name, refused),
			"rm -- "+quote(p))
	case int(st.Uid) != u.UID && st.Uid != 0 && int(st.Uid) != au.id.UID:
		au.fail(Permission, p, fmt.Sprintf("mailbox belongs to %s, not %s: giving it to %s would hand over another's mail; %s", userName(st.Uid), name, name, refused), aside)
	case int(st.Uid) != u.UID || st.Mode&0o007 != 0 || !au.id.can(st, 0o2):
		au.fail(Permission, p, fmt.Sprintf("mailbox is %s %s; want %s:%s 0660", owner(st), perm(st), name, au.groupName()),
			fmt.Sprintf("chown %s:%s %s && chmod 0660 %s", quote(name), au.groupName(), quote(p), quote(p)))
	}
}

func fileType(typ uint32) string {
	switch typ {
	case syscall.S_IFIFO:
		return "a FIFO"
	case syscall.S_IFSOCK:
		return "a socket"
	case syscall.S_IFCHR, syscall.S_IFBLK:
		return "a device"
	}
	return fmt.Sprintf("type %o", typ)
}

// rootFile checks a file only root may change and the run user must read;
// secret ones are closed to others too. optional ones may be missing.
func (au *auditor) rootFile(what, p string, secret, optional bool) {
	if p == "" || au.id == nil {
		return
	}
	if _, err := os.Stat(p); os.IsNotExist(err) {
		if !optional {
			au.fail(Config, p, fmt.Sprintf("the %s file does not exist", what), "")
		}
		return
	}
	p = au.real(p)
	au.ancestry(filepath.Dir(p))
	st, ok := au.stat(p)
	if !ok {
		return
	}
	var bad []string
	if st.Uid != 0 || st.Mode&0o022 != 0 {
		bad = append(bad, fmt.Sprintf("writable by someone but root (%s %s)", owner(st), perm(st)))
	}
	if !au.id.can(st, 0o4) {
		bad = append(bad, fmt.Sprintf("%s cannot read it (%s %s)", au.id.Name, owner(st), perm(st)))
	}
	if secret && st.Mode&0o007 != 0 {
		bad = append(bad, fmt.Sprintf("open to everyone (mode %s): it is a secret", perm(st)))
	}
	if len(bad) == 0 {
		au.ok("%s %s: %s %s", what, p, owner(st), perm(st))
		return
	}
	fix := fmt.Sprintf("chown root:root %s && chmod 0644 %s", quote(p), quote(p))
	if secret {
		fix = fmt.Sprintf("chown root:%s %s && chmod 0640 %s", au.groupName(), quote(p), quote(p))
	}
	au.fail(Permission, p, strings.Join(bad, "; "), fix)
}

// authFile: the smarthost password, when configured, is the run user's
// alone (qrun refuses it otherwise).
func (au *auditor) authFile() {
	p := au.Config.Delivery.AuthFile
	if p == "" || au.id == nil {
		return
	}
	st, ok := au.stat(p)
	if !ok {
		return
	}
	var bad []string
	if int(st.Uid) != au.id.UID {
		bad = append(bad, fmt.Sprintf("owned by %s: %s must own it to read it at mode 0600", owner(st), au.id.Name))
	}
	if st.Mode&0o077 != 0 {
		bad = append(bad, fmt.Sprintf("mode %s: others can read the smarthost password (qrun refuses it)", perm(st)))
	}
	if len(bad) > 0 {
		au.fail(Permission, p, strings.Join(bad, "; "),
			fmt.Sprintf("chown %s:%s %s && chmod 0600 %s", au.id.Name, au.groupName(), quote(p), quote(p)))
		return
	}
	au.ok("auth file %s: %s %s", p, owner(st), perm(st))
}

// ancestry checks every directory from dir up to / once: each must be
// root's and writable by nobody else (a sticky directory such as /tmp is
// fine), or its owner could swap what lies below.
func (au *auditor) ancestry(dir string) {
	for d := dir; ; d = filepath.Dir(d) {
		if au.chained[d] {
			return
		}
		au.chained[d] = true
		if _, err := os.Stat(d); os.IsNotExist(err) {
			// Nothing there yet; what would be created is checked then.
		} else if st, ok := au.stat(d); ok {
			sticky := st.Mode&syscall.S_ISVTX != 0
			if st.Uid != 0 || (st.Mode&0o022 != 0 && !sticky) {
				au.fail(Permission, d, fmt.Sprintf("%s %s: someone but root can rename what lies below it", owner(st), perm(st)),
					fmt.Sprintf("chown root %s && chmod go-w %s", quote(d), quote(d)))
			}
		}
		if d == "/" || d == "." {
			return
		}
	}
}

// real resolves symlinks, so that the checks apply to the file itself.
func (au *auditor) real(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

func (au *auditor) stat(p string) (*syscall.Stat_t, bool) { return au.statWith(p, os.Stat) }

func (au *auditor) lstat(p string) (*syscall.Stat_t, bool) { return au.statWith(p, os.Lstat) }

func (au *auditor) statWith(p string, f func(string) (os.FileInfo, error)) (*syscall.Stat_t, bool) {
	fi, err := f(p)
	if err != nil {
		switch {
		case os.IsNotExist(err):
			au.fail(Permission, p, "does not exist", "")
		case os.IsPermission(err) && au.parentReported(p):
			// A directory above is reported with its fix; once that is
			// applied this one can be inspected. One line, not one per
			// file below it.
		default:
			au.fail(Permission, p, fmt.Sprintf("cannot inspect as %s (%v): run -check as root", whoami(), err), "")
		}
		return nil, false
	}
	return fi.Sys().(*syscall.Stat_t), true
}

// parentReported reports whether a directory above p has a finding.
func (au *auditor) parentReported(p string) bool {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		if au.reported[d] {
			return true
		}
	}
	return false
}

func (au *auditor) groupName() string {
	if au.id == nil {
		return "mail"
	}
	return groupName(uint32(au.id.GID))
}

// who is the run user, with permission arithmetic.
type who struct{ *privilege.Identity }

// can reports whether the user gets bit (4 read, 2 write, 1 search) on a
// file, by the owner/group/other class that applies to it.
func (id who) can(st *syscall.Stat_t, bit uint32) bool {
	switch {
	case int(st.Uid) == id.UID:
		return st.Mode&(bit<<6) != 0
	case id.inGroup(int(st.Gid)):
		return st.Mode&(bit<<3) != 0
	default:
		return st.Mode&bit != 0
	}
}

func (id who) inGroup(gid int) bool {
	for _, g := range id.Groups {
		if g == gid {
			return true
		}
	}
	return id.GID == gid
}

// loginShell reads name's shell from a passwd file.
func loginShell(passwd, name string) (shell string, found bool, err error) {
	b, err := os.ReadFile(passwd)
	if err != nil {
		return "", false, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 7 && f[0] == name {
			return strings.TrimSpace(f[6]), true, nil
		}
	}
	return "", false, nil
}

// noLogin: nologin or false, wherever they live.
func noLogin(shell string) bool {
	switch filepath.Base(shell) {
	case "nologin", "false":
		return true
	}
	return false
}

// nologin is the shell to give the run user in fixes.
func nologin() string {
	for _, p := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/bin/false"
}

func owner(st *syscall.Stat_t) string { return userName(st.Uid) + ":" + groupName(st.Gid) }

func perm(st *syscall.Stat_t) string { return fmt.Sprintf("%04o", st.Mode&0o7777) }

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return strconv.Itoa(int(uid))
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(gid))
}

func whoami() string { return userName(uint32(os.Geteuid())) }

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	switch {
	case strings.HasSuffix(what, "y"):
		what = what[:len(what)-1] + "ie"
	case strings.HasSuffix(what, "x"), strings.HasSuffix(what, "s"), strings.HasSuffix(what, "sh"), strings.HasSuffix(what, "ch"):
		what += "e"
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// quote makes p safe to paste into a shell.
func quote(p string) string {
	if p != "" && strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@=,") == "" {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
