// Package launchers runs smtp-bs and qrun the way admins will: under the
// real xinetd with contrib/xinetd/smtp-bs, under systemd-socket-activate
// as the systemd units do, qrun from the cron line and the timer's
// ExecStart, installed by make install, audited by -check. Each test
// takes its command lines and settings from the contrib files themselves,
// substituting only ports and paths, and observes for real which user and
// groups each process ran as (/proc/PID/status during the session) and who
// owns what it wrote.
//
// Most tests need root (to switch users); without it they skip, except
// under CI=true, where they fail: CI runs as root.
package launchers

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/privilege"
)

// contrib reads a file of contrib/.
func contrib(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "contrib", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mail(t *testing.T) *privilege.Identity {
	t.Helper()
	id, err := privilege.Lookup("mail")
	if err != nil {
		t.Fatalf("user mail: %v", err)
	}
	return id
}

// ids is what /proc says about a process's identity.
type ids struct {
	UID, GID [4]int // real, effective, saved, filesystem
	Groups   []int
	Nice     int
}

func procIDs(pid int) (ids, error) {
	var r ids
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			if len(f) != 4 {
				return r, fmt.Errorf("bad %s line %q", k, line)
			}
			dst := &r.UID
			if k == "Gid" {
				dst = &r.GID
			}
			for i := range f {
				dst[i], _ = strconv.Atoi(f[i])
			}
		case "Groups":
			for _, g := range f {
				n, _ := strconv.Atoi(g)
				r.Groups = append(r.Groups, n)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return r, err
	}
	// Fields after the command name in parentheses; nice is field 19.
	rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(rest) > 16 {
		r.Nice, _ = strconv.Atoi(rest[16])
	}
	return r, nil
}

// assertMail fails unless the process ran as mail with mail's groups only.
func assertMail(t *testing.T, what string, got ids, m *privilege.Identity) {
	t.Helper()
	for i := range 4 {
		if got.UID[i] != m.UID || got.GID[i] != m.GID {
			t.Fatalf("%s runs as uid %v gid %v, want mail (%d:%d) in every slot", what, got.UID, got.GID, m.UID, m.GID)
		}
	}
	for _, g := range got.Groups {
		ok := false
		for _, mg := range m.Groups {
			ok = ok || g == mg
		}
		if !ok {
			t.Fatalf("%s has supplementary groups %v; mail's are %v", what, got.Groups, m.Groups)
		}
	}
	t.Logf("%s: uid %v gid %v groups %v nice %d", what, got.UID, got.GID, got.Groups, got.Nice)
}

// childOf waits for a process whose parent is ppid and whose executable is
// exe, and returns its pid.
func childOf(t *testing.T, ppid int, exe string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if parentOf(pid) != ppid {
				continue
			}
			if x, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && x == exe {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no process %s with parent %d", exe, ppid)
	return 0
}

func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(rest) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(rest[1])
	return n
}

// session opens an SMTP session and leaves it open after EHLO, with the
// smtp-bs process that serves it found under launcher pid ppid.
func session(t *testing.T, addr string, ppid int) (*testenv.Dialogue, int) {
	t.Helper()
	d := testenv.Dial(t, addr, 220)
	d.Cmd("EHLO client.test", 250)
	return d, childOf(t, ppid, testenv.Bin(t, "smtp-bs"))
}

// sendAndQuit finishes a session with one message to a relayed recipient;
// it returns the queue ID from the 250 reply.
func sendAndQuit(t *testing.T, d *testenv.Dialogue, subject string) string {
	t.Helper()
	d.Cmd("MAIL FROM:<sender@client.test>", 250)
	d.Cmd("RCPT TO:<someone@elsewhere.example>", 250)
	d.Cmd("DATA", 354)
	d.Send("From: sender@client.test\r\nTo: someone@elsewhere.example\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n.\r\n")
	reply := d.Expect(250)
	d.Cmd("QUIT", 221)
	f := strings.Fields(reply)
	return f[len(f)-1]
}

// assertSpoolMail fails unless everything in the spool is mail's, files
// mode 0600 or stricter, directories 0700; it returns the files found.
func assertSpoolMail(t *testing.T, dir string, m *privilege.Identity) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != m.UID || int(st.Gid) != m.GID {
			t.Errorf("%s is owned by %d:%d, not mail (%d:%d)", p, st.Uid, st.Gid, m.UID, m.GID)
		}
		perm := st.Mode & 0o7777
		if d.IsDir() && perm != 0o700 || !d.IsDir() && perm&^0o600 != 0 {
			t.Errorf("%s has mode %04o", p, perm)
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// queuedFiles checks the spool file of a queue ID (content and envelope).
func queuedFiles(t *testing.T, spool, id string) {
	t.Helper()
	for _, sub := range []string{"queue"} {
		if _, err := os.Stat(filepath.Join(spool, sub, id)); err != nil {
			t.Errorf("message %s: %v", id, err)
		}
	}
}

// substitute replaces each old path with its new one and fails if an
// installed path is left over.
func substitute(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	s = strings.NewReplacer(pairs...).Replace(s)
	for _, left := range []string{"/usr/local/sbin/", "/etc/smtp-bs/"} {
		if strings.Contains(s, left) {
			t.Fatalf("%q still names %s after substitution", s, left)
		}
	}
	return s
}

// run runs a command and returns its combined output and exit code.
func run(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), code
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// owner returns the uid and gid of a file.
func owner(t *testing.T, p string) (int, int, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), os.FileMode(st.Mode & 0o7777)
}

// listening waits until something listens on addr (from /proc/net/tcp,
// so no probe connection shows up as a session).
func listening(t *testing.T, addr string) {
	t.Helper()
	_, portStr, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portStr)
	want := fmt.Sprintf(":%04X", port)
	waitFor(t, "a listener on "+addr, func() bool {
		b, _ := os.ReadFile("/proc/net/tcp")
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
				return true
			}
		}
		return false
	})
}
