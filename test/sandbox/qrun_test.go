package sandbox_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
)

// trapScript is a delivery program that tries, from inside qrun's
// sandbox and its own narrower layer, what an exploited program would,
// and writes what happened into file_dir (the one place it may write).
const trapScript = `#!/bin/sh
out=%[1]s/trap.result
try() { if "$@" >/dev/null 2>&1; then echo "$name=ok" >> $out; else echo "$name=refused" >> $out; fi; }
name=write_outside try sh -c 'echo x > %[2]s/program-planted'
name=exec_outside try /usr/bin/id
name=read_spool try sh -c 'ls %[3]s/queue'
name=write_mailbox try sh -c 'echo x >> %[4]s/nobody'
name=read_other try cat %[5]s
name=write_file_dir try sh -c 'echo x > %[1]s/written'
cat > /dev/null
exit 0
`

// TestQrunConfined queues mail for a mailbox and a program, then runs the
// real qrun (failpoint build) with probes of its own: it must deliver
// both, while its attempts outside the delivery paths and program_dir,
// and its program's attempts outside their narrower layer, are refused.
func TestQrunConfined(t *testing.T) {
	needSandbox(t)
	testenv.NeedRoot(t, "local delivery runs as mail only when the test is root")
	e := testenv.New(t)
	w := newWorld(t, e)
	mail, progs, files := filepath.Join(e.Dir, "mail"), filepath.Join(e.Dir, "smrsh"), filepath.Join(e.Dir, "files")
	for _, d := range []string{mail, progs, files} {
		os.Mkdir(d, 0o755)
	}
	exec.Command("chown", "root:mail", mail).Run()
	os.Chmod(mail, 0o2775)
	testenv.Chown(t, files, "mail")
	script := fmt.Sprintf(trapScript, files, w.outside, e.SpoolDir, mail, w.other)
	if err := os.WriteFile(filepath.Join(progs, "trap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	aliases := filepath.Join(e.Dir, "aliases")
	os.WriteFile(aliases, []byte("prog: \"|trap\"\n"), 0o644)
	e.Extra["local"] = fmt.Sprintf("domains = [%q]\naliases = %q\nmail_spool = %q\nprogram_dir = %q\nfile_dir = %q\n",
		e.Hostname, aliases, mail, progs, files)
	e.WriteConfig()

	// Two messages in by a local pipe session (smtp-bs sandboxed too).
	var in bytes.Buffer
	fmt.Fprintf(&in, "EHLO local\r\nMAIL FROM:<s@client.example>\r\nRCPT TO:<nobody@%[1]s>\r\nRCPT TO:<prog@%[1]s>\r\nDATA\r\nSubject: local\r\n\r\nhi\r\n.\r\nQUIT\r\n", e.Hostname)
	cmd := exec.Command(testenv.Bin(t, "smtp-bs"), "-config", e.CfgFile)
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "queued") {
		t.Fatalf("pipe session: %v\n%s\n%s", err, out, e.Log())
	}

	qrunPlanted := filepath.Join(w.outside, "qrun-planted")
	attempts := []string{"write:" + qrunPlanted, "write:" + filepath.Join(progs, "planted"),
		"read:" + w.other, "exec:/usr/bin/id"}
	out := w.arm(t, attempts...)
	q := exec.Command(testenv.FailpointBin(t, "qrun"), "-config", e.CfgFile, "-once")
	q.Env = append(os.Environ(), "SMTPBS_SANDBOX_PROBE_DIR="+w.dir)
	if b, err := q.CombinedOutput(); err != nil {
		t.Fatalf("qrun -once: %v\n%s\n%s", err, b, e.Log())
	}
	r := results(t, out)
	for _, a := range attempts {
		if r[a] != "EACCES" {
			t.Errorf("qrun %s: %q, want EACCES", a, r[a])
		}
	}
	if q := e.Queued(); len(q) != 0 {
		t.Fatalf("still queued: %v\n%s", q, e.Log())
	}
	if b, _ := os.ReadFile(filepath.Join(mail, "nobody")); !strings.Contains(string(b), "Subject: local") {
		t.Error("the mailbox delivery did not happen under the sandbox")
	}
	b, err := os.ReadFile(filepath.Join(files, "trap.result"))
	if err != nil {
		t.Fatalf("the program left no results: %v\n%s", err, e.Log())
	}
	res := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		res[k] = v
	}
	for k, v := range map[string]string{
		"write_outside": "refused", "exec_outside": "refused", "read_spool": "refused",
		"write_mailbox": "refused", "read_other": "refused", "write_file_dir": "ok",
	} {
		if res[k] != v {
			t.Errorf("program %s: %q, want %s", k, res[k], v)
		}
	}
	for _, p := range []string{qrunPlanted, filepath.Join(w.outside, "program-planted"), filepath.Join(progs, "planted")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s was written", p)
		}
	}
}
