package sandbox_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

var eperm = regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?(\w+)(?:\(| resumed>).*= -1 EPERM`)

// refusedAfterFilter is every system call that got EPERM after the
// process loaded its seccomp filter, from an strace -f log, but for
// epoll_ctl (see below).
func refusedAfterFilter(t *testing.T, trace string) (refused []string, killed bool) {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	loaded := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "SECCOMP_SET_MODE_FILTER") {
			loaded = true
			continue
		}
		if strings.Contains(l, "SIGSYS") && strings.Contains(l, "killed") {
			killed = true
		}
		// epoll_ctl's EPERM is the kernel's for a regular file (Go tries
		// every file it opens), and the call is on every allow-list.
		if m := eperm.FindStringSubmatch(l); loaded && m != nil && m[1] != "epoll_ctl" {
			refused = append(refused, m[1])
		}
	}
	if !loaded {
		t.Fatalf("%s: no seccomp filter was loaded", trace)
	}
	return refused, killed
}

// TestTracedSessionsRefuseNothing runs real sessions under strace -f, by
// a pipe as a local program would (swaks --pipe): plain, a 6 MB message,
// STARTTLS, and
// AUTH PLAIN over TLS against argon2id (the heaviest in memory); the
// filter must have refused nothing they did, the allow-list's claim.
func TestTracedSessionsRefuseNothing(t *testing.T) {
	needSandbox(t)
	swaks := testenv.NeedSwaksTLS(t)
	strace := testenv.Need(t, "strace")
	e := testenv.New(t)
	ca := testenv.NewCA(t, e.Dir)
	_, certPEM, keyPEM := ca.Leaf(t, e.Hostname, "127.0.0.1")
	cert, key, creds := filepath.Join(e.Dir, "cert.pem"), filepath.Join(e.Dir, "key.pem"), filepath.Join(e.Dir, "credentials")
	hash := exec.Command(testenv.Bin(t, "smtp-bs"), "-hash-password", "alice")
	hash.Stdin = strings.NewReader("alice-pw\n")
	line, err := hash.Output()
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string][]byte{cert: certPEM, key: keyPEM, creds: line} {
		if err := os.WriteFile(p, c, 0o600); err != nil {
			t.Fatal(err)
		}
		if testenv.IsRoot() {
			testenv.Chown(t, p, "mail")
		}
	}
	e.Top = fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n[auth]\ncredentials_file = %q\n[auth.senders]\nalice = [\"a@client.example\"]\n", cert, key, creds)
	e.WriteConfig()

	// A large message makes the heap grow under the filter.
	big := filepath.Join(e.Dir, "big.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat(strings.Repeat("x", 76)+"\r\n", 80000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"large", []string{"--body", big}},
		{"starttls", []string{"--tls"}},
		{"auth", []string{"--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "alice-pw"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			trace := filepath.Join(t.TempDir(), "trace")
			pipe := fmt.Sprintf("%s -f -qq -o %s %s -config %s", strace, trace, testenv.Bin(t, "smtp-bs"), e.CfgFile)
			args := append([]string{"--pipe", pipe, "--from", "a@client.example", "--to", "b@remote.example",
				"--header", "Subject: traced " + c.name}, c.args...)
			out, err := exec.Command(swaks, args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "queued") {
				t.Fatalf("swaks: %v\n%s\n%s", err, out, e.Log())
			}
			refused, killed := refusedAfterFilter(t, trace)
			if len(refused) > 0 || killed {
				t.Errorf("the filter refused %v (killed: %v) in a real %s session", refused, killed, c.name)
			}
		})
	}
}

// The pattern reads strace's two forms of a refused call.
func TestEpermPattern(t *testing.T) {
	for line, want := range map[string]string{
		"21150 epoll_ctl(6, EPOLL_CTL_ADD, 5, {events=EPOLLIN}) = -1 EPERM (Operation not permitted)": "epoll_ctl",
		"21150 <... setuid resumed>)             = -1 EPERM (Operation not permitted)":                "setuid",
		"21150 openat(AT_FDCWD, \"/x\", O_RDONLY) = -1 EACCES (Permission denied)":                    "",
	} {
		got := ""
		if m := eperm.FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}

// TestTracedDeliveryRefusesNothing: a real qrun -once, traced, delivering
// by SMTP to a sink: the filter refuses nothing it does.
func TestTracedDeliveryRefusesNothing(t *testing.T) {
	needSandbox(t)
	strace := testenv.Need(t, "strace")
	sink := testenv.NewSink(t)
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"none\"", "["+strings.Replace(sink.Addr, ":", "]:", 1))
	e.WriteConfig()
	in := "EHLO local\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nSubject: traced delivery\r\n\r\nhi\r\n.\r\nQUIT\r\n"
	s := exec.Command(testenv.Bin(t, "smtp-bs"), "-config", e.CfgFile)
	s.Stdin = strings.NewReader(in)
	if out, err := s.CombinedOutput(); err != nil || !strings.Contains(string(out), "queued") {
		t.Fatalf("session: %v\n%s", err, out)
	}
	trace := filepath.Join(t.TempDir(), "trace")
	q := exec.Command(strace, "-f", "-qq", "-o", trace, testenv.Bin(t, "qrun"), "-config", e.CfgFile, "-once")
	if out, err := q.CombinedOutput(); err != nil {
		t.Fatalf("qrun -once: %v\n%s\n%s", err, out, e.Log())
	}
	if len(sink.Messages()) != 1 {
		t.Fatalf("sink got %d messages, want 1\n%s", len(sink.Messages()), e.Log())
	}
	refused, killed := refusedAfterFilter(t, trace)
	if len(refused) > 0 || killed {
		t.Errorf("the filter refused %v (killed: %v) in a real delivery", refused, killed)
	}
}
