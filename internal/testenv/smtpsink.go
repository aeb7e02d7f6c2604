package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// PostfixRoot is where Debian's postfix package is unpacked (dpkg -x) for
// its smtp-sink and smtp-source: $POSTFIX_ROOT, or the benchmark's cache.
func PostfixRoot(t testing.TB) string {
	t.Helper()
	cands := []string{os.Getenv("POSTFIX_ROOT"), filepath.Join(Root(), "bench", ".cache", "root")}
	for _, r := range cands {
		if r == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(r, "usr", "sbin", "smtp-sink")); err == nil {
			return r
		}
	}
	// Postfix is unpacked, never installed: an installed MTA would start.
	Missing(t, "Postfix's smtp-sink is not unpacked: run bench/fetch.sh or set POSTFIX_ROOT", "postfix (unpacked by bench/fetch.sh)")
	return ""
}

// SmtpSink is Postfix's smtp-sink on 127.0.0.1, dumping what it receives.
type SmtpSink struct {
	Addr string
	dump string
}

// StartSmtpSink runs smtp-sink (as nobody, as it insists) until the test ends.
func StartSmtpSink(t testing.TB) *SmtpSink {
	t.Helper()
	root := PostfixRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(dir, 0o777)
	s := &SmtpSink{Addr: FreePort(t), dump: filepath.Join(dir, "dump")}
	cmd := exec.Command(filepath.Join(root, "usr", "sbin", "smtp-sink"), "-u", "nobody", "-D", s.dump, s.Addr, "256")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(root, "usr", "lib", "postfix"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("smtp-sink: %s", out.String())
		}
	})
	WaitListen(t, s.Addr)
	return s
}

var subjectRe = regexp.MustCompile(`(?m)^Subject: (.*)$`)

// Subjects lists the Subject of each message received so far (smtp-sink
// appends every message to its dump file, after X-Mail-Args lines).
func (s *SmtpSink) Subjects() []string {
	time.Sleep(50 * time.Millisecond) // smtp-sink writes after it answers
	b, _ := os.ReadFile(s.dump)
	var out []string
	for _, m := range subjectRe.FindAllSubmatch(b, -1) {
		out = append(out, string(bytes.TrimRight(m[1], "\r")))
	}
	return out
}
