package tcpwrap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeDNS is a name service both sides of a comparison share: our checks
// get it as a Resolver, the libwrap oracle gets the same records through
// its interposed getnameinfo and getaddrinfo. No lookup leaves the
// process.
type fakeDNS struct {
	ptr   []fakePTR
	hosts []fakeHost
}

type fakePTR struct {
	addr netip.Addr
	name string
}

type fakeHost struct {
	name, canon string
	addr        netip.Addr
}

var errNoSuchHost = errors.New("no such host")

func (d *fakeDNS) LookupAddr(_ context.Context, addr string) ([]string, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	for _, p := range d.ptr {
		if p.addr == a {
			if !goValidName(p.name) {
				// The real resolver drops it, and says so.
				return nil, &net.DNSError{Err: invalidNamesDetail, Name: addr}
			}
			// The real resolver returns absolute names.
			return []string{p.name + "."}, nil
		}
	}
	return nil, errNoSuchHost
}

// goValidName is the part of the net package's host name check that the
// generated names can fail: a name of digits and dots only (which libwrap
// calls numeric) is not one.
func goValidName(name string) bool {
	return strings.Trim(name, "0123456789.") != ""
}

func (d *fakeDNS) LookupHost(_ context.Context, host string) ([]string, error) {
	var out []string
	for _, h := range d.hosts {
		if equalFold(h.name, host) {
			out = append(out, h.addr.String())
		}
	}
	if len(out) == 0 {
		return nil, errNoSuchHost
	}
	return out, nil
}

func (d *fakeDNS) LookupCNAME(_ context.Context, host string) (string, error) {
	for _, h := range d.hosts {
		if equalFold(h.name, host) {
			return h.canon + ".", nil
		}
	}
	return "", errNoSuchHost
}

// oracleCase is one question for libwrap.
type oracleCase struct {
	daemon      string
	allow, deny string // file paths
	client      netip.Addr
	port        uint16
	local       netip.AddrPort
	user        string
	dns         *fakeDNS
	env         []string // variables to report
}

// oracleResult is libwrap's answer.
type oracleResult struct {
	allow         bool
	allowSeverity int
	denySeverity  int
	env           map[string]string // variables set
}

// scratchDir returns a directory for many small files that goes away
// after the test: in /dev/shm when there is one, since creating thousands
// of files on a disk file system is what would make the differential test
// slow, else t.TempDir().
func scratchDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "tcpwrap-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// requireCI is true when a missing oracle must fail the test (on CI).
func requireCI() bool { return os.Getenv("CI") == "true" }

var oracleOnce struct {
	sync.Once
	path string
	err  error
	dir  string
}

// oracleBinary compiles testdata/oracle.c against Debian's libwrap, once
// per test binary. Without gcc or libwrap0-dev it skips the calling test,
// except on CI, where the oracle is required and the test fails.
func oracleBinary(t testing.TB) string {
	t.Helper()
	oracleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tcpwrap-oracle-")
		if err != nil {
			oracleOnce.err = err
			return
		}
		oracleOnce.dir = dir
		gcc, err := exec.LookPath("gcc")
		if err != nil {
			oracleOnce.err = fmt.Errorf("gcc not found: %w", err)
			return
		}
		src, err := filepath.Abs(filepath.Join("testdata", "oracle.c"))
		if err != nil {
			oracleOnce.err = err
			return
		}
		bin := filepath.Join(dir, "oracle")
		out, err := exec.Command(gcc, "-O1", "-Wall", "-o", bin, src, "-lwrap", "-ldl").CombinedOutput()
		if err != nil {
			oracleOnce.err = fmt.Errorf("compiling the libwrap oracle (needs libwrap0-dev): %v\n%s", err, out)
			return
		}
		oracleOnce.path = bin
	})
	if oracleOnce.err != nil {
		if requireCI() {
			t.Fatalf("CI=true and the libwrap oracle is unavailable: %v", oracleOnce.err)
		}
		t.Skipf("libwrap oracle unavailable (Debian package gcc, libwrap0-dev and tcpd; scripts/deps.sh installs it): %v", oracleOnce.err)
	}
	return oracleOnce.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if oracleOnce.dir != "" {
		os.RemoveAll(oracleOnce.dir)
	}
	os.Exit(code)
}

func hexField(s string) string {
	if s == "" {
		return "-"
	}
	return hex.EncodeToString([]byte(s))
}

// askOracle runs all cases through one run of the oracle.
func askOracle(t testing.TB, cases []oracleCase) []oracleResult {
	t.Helper()
	bin := oracleBinary(t)
	var in bytes.Buffer
	for i, c := range cases {
		fmt.Fprintf(&in, "C %d\nD %s\nA %s\nY %s\n", i, hexField(c.daemon), hexField(c.allow), hexField(c.deny))
		if c.client.IsValid() {
			fmt.Fprintf(&in, "L %s %d\n", hexField(c.client.String()), c.port)
		}
		if c.local.IsValid() {
			fmt.Fprintf(&in, "S %s %d\n", hexField(c.local.Addr().String()), c.local.Port())
		}
		user := c.user
		if user == "" {
			user = unknown // an empty RQ_USER would start an ident lookup
		}
		fmt.Fprintf(&in, "U %s\n", hexField(user))
		if c.dns != nil {
			for _, p := range c.dns.ptr {
				fmt.Fprintf(&in, "P %s %s\n", hexField(p.addr.String()), hexField(p.name))
			}
			for _, h := range c.dns.hosts {
				fmt.Fprintf(&in, "H %s %s %s\n", hexField(h.name), hexField(h.canon), hexField(h.addr.String()))
			}
		}
		for _, e := range c.env {
			fmt.Fprintf(&in, "E %s\n", hexField(e))
		}
		in.WriteString("G\n")
	}
	cmd := exec.Command(bin)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle: %v\n%s", err, stderr.String())
	}
	results := make([]oracleResult, len(cases))
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			t.Fatalf("oracle: bad line %q", sc.Text())
		}
		id, err1 := strconv.Atoi(f[0])
		as, err2 := strconv.Atoi(f[2])
		ds, err3 := strconv.Atoi(f[3])
		if err := errors.Join(err1, err2, err3); err != nil || id < 0 || id >= len(cases) {
			t.Fatalf("oracle: bad line %q: %v", sc.Text(), err)
		}
		r := oracleResult{allow: f[1] == "1", allowSeverity: as, denySeverity: ds, env: map[string]string{}}
		for _, e := range f[4:] {
			if strings.HasSuffix(e, "!") {
				continue
			}
			name, val, _ := strings.Cut(e, "=")
			n, _ := hex.DecodeString(name)
			v := []byte{}
			if val != "-" {
				v, _ = hex.DecodeString(val)
			}
			r.env[string(n)] = string(v)
		}
		results[id] = r
		seen++
	}
	if seen != len(cases) {
		t.Fatalf("oracle answered %d of %d cases\n%s", seen, len(cases), stderr.String())
	}
	return results
}
