package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"smtp-bs/pkg/spool"
)

// The port smtp-sink listens on in the delivery benchmark; every drainer
// is configured with it.
const sinkPort = 2525

type bench struct {
	o     *options
	root  string // unpacked Debian packages
	bin   string // our binaries
	run   string // everything the handlers write
	sink  *syslogSink
	procs procTable

	mu       sync.Mutex
	nextPort int

	smtpbs, sendmail, exim *handler
	handlers               []*handler // in the interleaving order
	dns                    *dnsServer // smtp-bs-checks' resolver
	mailUID, mailGID       int
}

// handler is one SMTP server started by tcpserver per connection.
type handler struct {
	name     string
	dir      string // its private directory under run/
	user     string // tcpserver -u/-g; "" runs it as root
	uid, gid int
	argv     []string
	env      []string
	syslog   string          // the tag its log lines carry
	reset    func() error    // an empty spool
	count    func() int      // messages in the spool
	drain    func() []string // the command that delivers its queue to smtp-sink, or nil
	drainEnv []string
	spool    string       // the directory reset empties (snapshotted by the delivery benchmark)
	queries  func() int64 // DNS queries answered so far, for a handler that asks any
}

func newBench(o *options) (*bench, error) {
	b := &bench{o: o, root: filepath.Join(o.cache, "root"), bin: filepath.Join(o.cache, "bin"),
		run: filepath.Join(o.cache, "run"), nextPort: 2600}
	if err := os.RemoveAll(b.run); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(b.run, 0o755); err != nil {
		return nil, err
	}
	// The run user must reach its spool below this directory.
	for d := b.run; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	s, err := setupNamespace(b.run, o.quickack)
	if err != nil {
		return nil, err
	}
	b.sink = s
	u, err := user.Lookup("mail")
	if err != nil {
		return nil, err
	}
	b.mailUID, _ = strconv.Atoi(u.Uid)
	b.mailGID, _ = strconv.Atoi(u.Gid)
	// The interleaving order: smtp-bs, the -ab handlers right after it,
	// its variants, the floors, the other MTAs.
	makers := []func() (*handler, error){b.newSmtpbs}
	for _, a := range o.ab {
		makers = append(makers, func() (*handler, error) { return b.newAB(a) })
	}
	makers = append(makers, b.newSmtpbsTLS, b.newSmtpbsChecks, b.newSmtpbsP10, b.newFloor, b.newFloorLibs, b.newFloorCode, b.newSendmail, b.newExim)
	for _, mk := range makers {
		h, err := mk()
		if err != nil {
			return nil, err
		}
		if h != nil {
			b.handlers = append(b.handlers, h)
		}
	}
	byName := map[string]*handler{}
	for _, h := range b.handlers {
		byName[h.name] = h
	}
	b.smtpbs, b.sendmail, b.exim = byName["smtp-bs"], byName["sendmail"], byName["exim"]
	var keep []*handler
	for _, h := range b.handlers {
		if strings.Contains(","+o.handlers+",", ","+h.name+",") || o.ab.has(h.name) {
			keep = append(keep, h)
		}
	}
	b.handlers = keep
	return b, nil
}

func (b *bench) smtpbsBin() string {
	if b.o.smtpbsBin != "" {
		return b.o.smtpbsBin
	}
	return filepath.Join(b.bin, "smtp-bs")
}

func (b *bench) qrunBin() string {
	if b.o.qrunBin != "" {
		return b.o.qrunBin
	}
	return filepath.Join(b.bin, "qrun")
}

func (b *bench) cleanup() {
	b.procs.stopAll()
	if b.dns != nil {
		b.dns.stop()
	}
	if !b.o.keep {
		os.RemoveAll(filepath.Join(b.run, "scale"))
	}
}

func (b *bench) port() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextPort++
	if b.nextPort > 2999 {
		b.nextPort = 2601
	}
	return b.nextPort
}

func countDir(dir string, match func(string) bool) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if match == nil || match(e.Name()) {
			n++
		}
	}
	return n
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// freshDir empties dir and recreates it, mode 0700, owned by uid:gid.
func freshDir(dir string, uid, gid int) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}

// smtp-bs as installed: the launcher runs it as mail; the config sets
// only the host name, the spool and the smarthost; everything else
// (logging to syslog, hosts.allow, the free-space reserve) is default.
func (b *bench) newSmtpbs() (*handler, error) { return b.smtpbsHandler("smtp-bs", b.smtpbsBin(), "") }

// smtp-bs with [tls] set: a certificate it reads before every greeting,
// and STARTTLS offered, which smtp-source never says.
func (b *bench) newSmtpbsTLS() (*handler, error) {
	dir := filepath.Join(b.run, "smtp-bs-tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cert, key, err := selfSigned(dir, b.mailGID)
	if err != nil {
		return nil, fmt.Errorf("smtp-bs-tls: certificate: %w", err)
	}
	return b.smtpbsHandler("smtp-bs-tls", b.smtpbsBin(), fmt.Sprintf("\n[tls]\ncert_file = %q\nkey_file = %q\n", cert, key))
}

// smtp-bs with the DNSBL and SPF checks on, asking b.dns. Both are
// skipped for clients in relay_networks, and 127.0.0.1 is in the default
// one: here nobody may relay, and the recipient's domain is accepted from
// anyone instead ([smtp] local_domains; routed on by the smarthost, so the
// message lands in the queue like smtp-bs's).
func (b *bench) newSmtpbsChecks() (*handler, error) {
	if b.dns == nil {
		d, err := startDNS("127.0.0.1:53")
		if err != nil {
			return nil, err
		}
		b.dns = d
	}
	extra := fmt.Sprintf("\n[smtp]\nrelay_networks = []\nlocal_domains = [%q]\n\n[checks]\nresolver = %q\n\n"+
		"[checks.dnsbl]\nzones = [%q]\n\n[checks.spf]\nenabled = true\n", rcptDomain, b.dns.addr, dnsblZone)
	h, err := b.smtpbsHandler("smtp-bs-checks", b.smtpbsBin(), extra)
	if err != nil {
		return nil, err
	}
	h.queries = b.dns.queries.Load
	return h, nil
}

// smtp-bs built with go-smtp's DATA reader before patch 11 (buildP10);
// nil when the build was skipped.
func (b *bench) newSmtpbsP10() (*handler, error) {
	bin := p10Bin(b.bin)
	if _, err := os.Stat(bin); err != nil {
		return nil, nil
	}
	return b.smtpbsHandler(p10Name, bin, "")
}

// An -ab handler: another smtp-bs binary, with more TOML appended.
func (b *bench) newAB(a abHandler) (*handler, error) {
	extra := ""
	if a.toml != "" {
		t, err := os.ReadFile(a.toml)
		if err != nil {
			return nil, fmt.Errorf("-ab %s: %w", a.name, err)
		}
		extra = "\n" + string(t) + "\n"
	}
	h, err := b.smtpbsHandler(a.name, a.bin, extra)
	if err != nil {
		return nil, err
	}
	// It logs under its program name, as smtp-bs does under its own.
	h.syslog = filepath.Base(a.bin)
	b.sink.addTag(h.syslog)
	return h, nil
}

// smtpbsHandler is one smtp-bs handler: bin run as mail with the standard
// config (host name, its own spool, the smarthost) plus extra, TOML
// appended at the end.
func (b *bench) smtpbsHandler(name, bin, extra string) (*handler, error) {
	dir := filepath.Join(b.run, name)
	h := &handler{name: name, dir: dir, user: "mail", uid: b.mailUID, gid: b.mailGID, syslog: "smtp-bs",
		spool: filepath.Join(dir, "spool")}
	cfg := filepath.Join(dir, "smtp-bs.toml")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	toml := fmt.Sprintf("hostname = %q\n\n[spool]\ndir = %q\n\n[delivery]\nsmarthost = \"127.0.0.1:%d\"\n", benchHost, h.spool, sinkPort) + extra
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	h.argv = []string{bin, "-config", cfg}
	if b.o.smtpbsEnv != "" {
		h.env = strings.Split(b.o.smtpbsEnv, ",")
	}
	h.reset = func() error {
		if err := os.RemoveAll(h.spool); err != nil {
			return err
		}
		if _, err := spool.Create(h.spool, spool.Ops{}); err != nil {
			return err
		}
		return chownTree(h.spool, b.mailUID, b.mailGID)
	}
	h.count = func() int { return countDir(filepath.Join(h.spool, "queue"), nil) }
	h.drain = func() []string { return []string{b.qrunBin(), "-config", cfg, "-once"} }
	return h, nil
}

// The floor: bench/cmd/floor, also run as mail.
func (b *bench) newFloor() (*handler, error) { return b.floorHandler("floor") }

// The floor built with the libraries smtp-bs links (bench/cmd/floor/libs.go)
// and the same work: between the floor and smtp-bs, it shows how much of
// the gap linking them costs and how much is smtp-bs's own.
func (b *bench) newFloorLibs() (*handler, error) { return b.floorHandler("floor-libs") }

// floor-libs also linking what cmd/smtp-bs calls, never calling it
// (bench/cmd/floor/code.go): over floor-libs, what a larger program costs
// each start; under smtp-bs, the work smtp-bs does.
func (b *bench) newFloorCode() (*handler, error) { return b.floorHandler("floor-code") }

func (b *bench) floorHandler(name string) (*handler, error) {
	dir := filepath.Join(b.run, name)
	h := &handler{name: name, dir: dir, user: "mail", uid: b.mailUID, gid: b.mailGID, spool: filepath.Join(dir, "spool")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	h.argv = []string{filepath.Join(b.bin, name), h.spool}
	h.reset = func() error { return freshDir(h.spool, b.mailUID, b.mailGID) }
	h.count = func() int { return countDir(h.spool, nil) }
	return h, nil
}

// sendmail -bs -odq, run as root by the launcher as inetd would, with a
// sendmail.cf built by m4 from Debian's sendmail-cf: every path is under
// run/sendmail, the host name is qualified, host names come from files
// (no DNS), no ident lookups, no interface probing. The smarthost is
// smtp-sink.
func (b *bench) newSendmail() (*handler, error) {
	dir := filepath.Join(b.run, "sendmail")
	h := &handler{name: "sendmail", dir: dir, syslog: "sendmail", spool: filepath.Join(dir, "mqueue")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := map[string]string{
		"service.switch":   "hosts files\naliases files\n",
		"hosts":            etcHosts(),
		"aliases":          "postmaster: root\n",
		"local-host-names": benchHost + "\n",
		"helpfile":         "",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			return nil, err
		}
	}
	d := func(k, v string) string { return fmt.Sprintf("define(`%s', `%s')dnl\n", k, v) }
	var mc strings.Builder
	mc.WriteString("divert(-1)\ndivert(0)dnl\n")
	fmt.Fprintf(&mc, "include(`%s/usr/share/sendmail/cf/m4/cf.m4')dnl\n", b.root)
	mc.WriteString("VERSIONID(`smtp-bs bench')dnl\nOSTYPE(`linux')dnl\n")
	for _, kv := range [][2]string{
		{"confDOMAIN_NAME", benchHost},
		{"QUEUE_DIR", h.spool},
		{"STATUS_FILE", filepath.Join(dir, "sendmail.st")},
		{"ALIAS_FILE", filepath.Join(dir, "aliases")},
		{"HELP_FILE", filepath.Join(dir, "helpfile")},
		{"confHOSTS_FILE", filepath.Join(dir, "hosts")},
		{"confSERVICE_SWITCH_FILE", filepath.Join(dir, "service.switch")},
		{"confCW_FILE", filepath.Join(dir, "local-host-names")},
		{"confPID_FILE", filepath.Join(dir, "sendmail.pid")},
		{"confTO_IDENT", "0"},
		{"confDONT_PROBE_INTERFACES", "true"},
		// Never refuse or delay for load: the benchmark loads the machine
		// on purpose, and the other handlers have no such switch.
		{"confREFUSE_LA", "999"},
		{"confQUEUE_LA", "999"},
		{"confDELAY_LA", "0"},
		{"SMART_HOST", "[127.0.0.1]"},
		{"RELAY_MAILER_ARGS", fmt.Sprintf("TCP $h %d", sinkPort)},
		{"ESMTP_MAILER_ARGS", fmt.Sprintf("TCP $h %d", sinkPort)},
	} {
		mc.WriteString(d(kv[0], kv[1]))
	}
	mc.WriteString("FEATURE(`accept_unresolvable_domains')dnl\nMAILER(`local')dnl\nMAILER(`smtp')dnl\n")
	mcPath := filepath.Join(dir, "sendmail.mc")
	if err := os.WriteFile(mcPath, []byte(mc.String()), 0o644); err != nil {
		return nil, err
	}
	cf, err := exec.Command(filepath.Join(b.root, "usr/bin/m4"), mcPath).Output()
	if err != nil {
		return nil, fmt.Errorf("m4 sendmail.mc: %w", err)
	}
	cfPath := filepath.Join(dir, "sendmail.cf")
	if err := os.WriteFile(cfPath, cf, 0o644); err != nil {
		return nil, err
	}
	sm := filepath.Join(b.root, "usr/libexec/sendmail/sendmail")
	h.argv = []string{sm, "-C", cfPath, "-bs", "-odq"}
	h.reset = func() error { return freshDir(h.spool, 0, 0) }
	h.count = func() int { return countDir(h.spool, func(n string) bool { return strings.HasPrefix(n, "qf") }) }
	h.drain = func() []string { return []string{sm, "-C", cfPath, "-qf"} }
	return h, nil
}

// exim4 -bs (Debian's exim4-daemon-light), run as root by the launcher,
// with a queue-only config: no reverse lookups, no ident, relay for
// 127.0.0.1, everything routed to smtp-sink.
func (b *bench) newExim() (*handler, error) {
	dir := filepath.Join(b.run, "exim")
	h := &handler{name: "exim", dir: dir, syslog: "exim", spool: filepath.Join(dir, "spool")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`# exim4 queue-only config for the smtp-bs benchmark
primary_hostname = %[1]s
exim_user = %[2]s
exim_group = %[2]s
never_users = root
spool_directory = %[3]s
log_file_path = syslog
syslog_duplication = false
keep_environment = LD_LIBRARY_PATH
queue_only = true
host_lookup =
rfc1413_hosts =
domainlist local_domains = %[1]s
hostlist relay_from_hosts = 127.0.0.1
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
  accept hosts = +relay_from_hosts
  deny message = relay not permitted

begin routers
smarthost:
  driver = manualroute
  route_list = * 127.0.0.1
  transport = remote_smtp
  self = send
  no_more

begin transports
remote_smtp:
  driver = smtp
  port = %[4]d
  allow_localhost
  hosts_avoid_tls = *

begin retry
* * F,1h,15m
`, benchHost, eximUser, h.spool, sinkPort)
	confPath := filepath.Join(dir, "exim.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	exim := filepath.Join(b.root, "usr/sbin/exim4")
	h.env = []string{"LD_LIBRARY_PATH=" + filepath.Join(b.root, "usr/lib/x86_64-linux-gnu")}
	h.drainEnv = h.env
	h.argv = []string{exim, "-C", confPath, "-bs"}
	h.reset = func() error { return freshDir(h.spool, eximID, eximID) }
	h.count = func() int {
		return countDir(filepath.Join(h.spool, "input"), func(n string) bool { return strings.HasSuffix(n, "-H") })
	}
	h.drain = func() []string { return []string{exim, "-C", confPath, "-qff"} }
	return h, nil
}
