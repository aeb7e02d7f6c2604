// Package testenv runs the real binaries for integration tests: it builds
// smtp-bs and qrun once per test binary, prepares spools and configs in
// temporary directories, starts launchers on 127.0.0.1, and provides an
// in-process go-smtp sink to deliver to.
//
// Only processes started here are stopped here, by PID.
package testenv

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/pkg/spool"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Bin returns the path of a freshly built binary ("smtp-bs" or "qrun"). The
// binaries are built once per test process into a world-readable directory,
// so a launcher can run them as any user.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "smtp-bs-bin-")
		if buildErr != nil {
			return
		}
		os.Chmod(binDir, 0o755)
		for _, cmd := range []string{"smtp-bs", "qrun"} {
			c := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "./cmd/"+cmd)
			c.Dir = Root()
			c.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := c.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// packages names the Debian package of each outside tool the tests run, so
// that a missing one says what to install (scripts/deps.sh installs them all).
var packages = map[string]string{
	"swaks": "swaks", "openssl": "openssl", "xinetd": "xinetd",
	"tcpserver": "ucspi-tcp", "strace": "strace", "python3": "python3",
	"systemd-socket-activate": "systemd", "systemd-analyze": "systemd",
	"setpriv": "util-linux", "runuser": "util-linux", "opendkim": "opendkim",
	"opendkim-genkey": "opendkim-tools", "make": "make", "gcc": "gcc",
	"tcpdmatch": "tcpd", "argon2": "argon2", "git": "git",
	"groff": "groff-base", "man": "man-db", "mandb": "man-db",
	"unshare": "util-linux", "dovecot": "dovecot-core",
	"haproxy": "haproxy", "nginx": "nginx", "rspamd": "rspamd",
}

// Package returns the Debian package that provides tool, or tool itself.
func Package(tool string) string {
	if p, ok := packages[tool]; ok {
		return p
	}
	return tool
}

// Packages returns the Debian packages of every tool Package knows, sorted
// and without repeats, so that a test can check scripts/deps.sh installs
// each one.
func Packages() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range packages {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Missing reports that what a test needs is not here: under CI=true the
// test fails, elsewhere it is skipped. Either way the message names the
// Debian package, in a form `make test`'s summary collects.
func Missing(t testing.TB, what, pkg string) {
	t.Helper()
	msg := fmt.Sprintf("%s (Debian package %s; scripts/deps.sh installs it)", what, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skip(msg)
}

// Need finds a tool on PATH. Under CI=true a missing tool fails the test;
// elsewhere it skips it.
func Need(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err == nil {
			return filepath.Join(dir, tool)
		}
	}
	Missing(t, tool+" is not installed", Package(tool))
	return ""
}

// NeedSwaksTLS finds swaks and checks that it can speak TLS: Debian's swaks
// only recommends the Perl TLS modules, and without them swaks exits with
// "TLS not available" instead of testing anything.
func NeedSwaksTLS(t testing.TB) string {
	t.Helper()
	bin := Need(t, "swaks")
	out, _ := exec.Command(bin, "--support").CombinedOutput()
	if !strings.Contains(string(out), "=== TLS supported") {
		Missing(t, "swaks cannot do TLS (swaks --support: "+strings.TrimSpace(grepLine(string(out), "TLS"))+")", "libnet-ssleay-perl")
	}
	return bin
}

// NeedPython finds python3 and checks that it can import each module.
func NeedPython(t testing.TB, pkg string, modules ...string) string {
	t.Helper()
	bin := Need(t, "python3")
	for _, m := range modules {
		if out, err := exec.Command(bin, "-c", "import "+m).CombinedOutput(); err != nil {
			Missing(t, fmt.Sprintf("python3 cannot import %s: %s", m, strings.TrimSpace(string(out))), pkg)
		}
	}
	return bin
}

// NeedOpenSSL finds openssl and checks that its s_client knows each option
// the test passes (an old or trimmed build lacks some).
func NeedOpenSSL(t testing.TB, options ...string) string {
	t.Helper()
	bin := Need(t, "openssl")
	out, _ := exec.Command(bin, "s_client", "-help").CombinedOutput()
	for _, o := range options {
		if !strings.Contains(string(out), o+" ") {
			Missing(t, "openssl s_client has no "+o, "openssl")
		}
	}
	return bin
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// IsRoot reports whether tests run as root (as in CI).
func IsRoot() bool { return os.Geteuid() == 0 }

// NeedRoot stops a test that needs root when it does not run as root: under
// CI=true, which runs as root, the test fails; elsewhere it is skipped. why
// says what needs root, since no package install can supply it.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if IsRoot() {
		return
	}
	msg := "needs root: " + why + " (run as root, as CI=true's .ci/run does)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and the test %s", msg)
	}
	t.Skip(msg)
}

// Env is one smtp-bs installation in a temporary directory.
type Env struct {
	T        testing.TB
	Dir      string
	SpoolDir string
	LogFile  string
	CfgFile  string
	Hostname string
	// Extra TOML appended to the generated config, per section:
	// Extra["smtp"] = "max_recipients = 5".
	Extra map[string]string
	Top   string // extra top-level TOML

	Mode      Mode // how DialMode reaches the dialogue (UseMode)
	clientTLS *tls.Config
}

// New prepares a directory, a spool and a config. When the test runs as
// root the spool belongs to user mail, as installed, and the programs drop
// to mail; otherwise everything belongs to the current user.
func New(t testing.TB) *Env {
	t.Helper()
	dir := t.TempDir()
	// mail must be able to reach the spool below the test's temp dirs.
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	e := &Env{
		T:        t,
		Dir:      dir,
		SpoolDir: filepath.Join(dir, "spool"),
		LogFile:  filepath.Join(dir, "log", "smtp-bs.log"),
		CfgFile:  filepath.Join(dir, "smtp-bs.toml"),
		Hostname: "mx.test.example",
		Extra:    map[string]string{},
	}
	if _, err := spool.Create(e.SpoolDir, spool.Ops{}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(e.LogFile), 0o755)
	if IsRoot() {
		Chown(t, e.SpoolDir, "mail")
		Chown(t, filepath.Dir(e.LogFile), "mail")
	}
	e.WriteConfig()
	return e
}

// Chown gives path and everything below it to user (and its group).
func Chown(t testing.TB, path, user string) {
	t.Helper()
	if out, err := exec.Command("chown", "-R", user+":"+user, path).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", path, err, out)
	}
}

// WriteConfig (re)writes the config file from the Env's fields.
func (e *Env) WriteConfig() {
	e.T.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %q\nlog = %q\n%s\n", e.Hostname, e.LogFile, e.Top)
	fmt.Fprintf(&b, "[spool]\ndir = %q\nmin_free_bytes = 0\n%s\n", e.SpoolDir, e.Extra["spool"])
	fmt.Fprintf(&b, "[smtp]\n%s\n", e.Extra["smtp"])
	fmt.Fprintf(&b, "[delivery]\n%s\n", e.Extra["delivery"])
	fmt.Fprintf(&b, "[tcpwrap]\n%s\n", orDefault(e.Extra["tcpwrap"], "enabled = false"))
	var others []string
	for sec := range e.Extra {
		switch sec {
		case "spool", "smtp", "delivery", "tcpwrap":
		default:
			others = append(others, sec)
		}
	}
	sort.Strings(others)
	for _, sec := range others {
		fmt.Fprintf(&b, "[%s]\n%s\n", sec, e.Extra[sec])
	}
	if err := os.WriteFile(e.CfgFile, []byte(b.String()), 0o644); err != nil {
		e.T.Fatal(err)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Log returns the log so far.
func (e *Env) Log() string {
	b, _ := os.ReadFile(e.LogFile)
	return string(b)
}

// Queued lists the IDs in the spool's queue/ directory.
func (e *Env) Queued() []string {
	ents, _ := os.ReadDir(filepath.Join(e.SpoolDir, "queue"))
	var ids []string
	for _, de := range ents {
		ids = append(ids, de.Name())
	}
	return ids
}

// Message reads a queued (or held) message: its envelope and content.
func (e *Env) Message(id string) (*spool.Envelope, string) {
	e.T.Helper()
	return ReadMessage(e.T, e.SpoolDir, id)
}

// ReadMessage reads message id of the spool at dir through pkg/spool, as
// qrun would.
func ReadMessage(t testing.TB, dir, id string) (*spool.Envelope, string) {
	t.Helper()
	sp, err := spool.Open(dir, spool.Ops{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := sp.ReadEnvelope(id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sp.OpenData(env)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return env, string(b)
}

// Qrun runs qrun with the env's config and args; it returns the combined
// output and the exit code.
func (e *Env) Qrun(args ...string) (string, int) {
	e.T.Helper()
	cmd := exec.Command(Bin(e.T, "qrun"), append([]string{"-config", e.CfgFile}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.T.Fatalf("qrun: %v", err)
	}
	return out.String(), code
}

// FreePort returns a 127.0.0.1 address with a port nobody listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Start runs a launcher process and stops it (by PID) when the test ends.
func Start(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd
}

// WaitPort waits until addr accepts connections.
func WaitPort(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// SocketActivate runs smtp-bs under systemd-socket-activate --accept on a
// free 127.0.0.1 port and returns the address.
func (e *Env) SocketActivate() string {
	e.T.Helper()
	ssa := Need(e.T, "systemd-socket-activate")
	addr := FreePort(e.T)
	Start(e.T, ssa, "-l", addr, "--accept", Bin(e.T, "smtp-bs"), "-config", e.CfgFile)
	WaitListen(e.T, addr)
	return addr
}

// WaitListen polls /proc/net/tcp for a listener instead of connecting, so
// no probe session shows up in the log.
func WaitListen(t testing.TB, addr string) {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	want := fmt.Sprintf(":%04X", port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile("/proc/net/tcp")
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
