package e2e

import (
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"smtp-bs/internal/testenv"
)

// asMail runs a shell command as user mail: what the red team could do as
// mail, or as a member of group mail in the directories it may write.
func asMail(t *testing.T, script string) {
	t.Helper()
	u, err := user.Lookup("mail")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd := exec.Command("sh", "-ec", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as mail: %s: %v\n%s", script, err, out)
	}
}

// entries lists a directory's names (none when it is missing).
func entries(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestMaildirLinksRefused plants, as user mail, the red team's three
// links under the Maildir root: a user's Maildir that is a link to a
// directory whose new/ is the spool's queue/, one that is a link to the
// spool itself, and a real Maildir whose new/ is a link elsewhere. After
// one message and a real qrun -once, only the honest Maildir holds it and
// nothing appeared in the spool or elsewhere.
func TestMaildirLinksRefused(t *testing.T) {
	e, _, addr, _ := localEnv(t)
	root := filepath.Join(e.Dir, "maildir")
	os.Mkdir(root, 0o755)
	exec.Command("chown", "root:mail", root).Run()
	os.Chmod(root, 0o2775)
	elsewhere := filepath.Join(e.Dir, "elsewhere")
	os.Mkdir(elsewhere, 0o777)
	os.Chmod(elsewhere, 0o777)
	e.Extra["local"] += fmt.Sprintf("mailbox = \"maildir\"\nmaildir_root = %q\n", root)
	e.WriteConfig()
	asMail(t, fmt.Sprintf(`cd %s
mkdir %s/daemon && ln -s %s/queue %s/daemon/new
ln -s %s/daemon daemon
ln -s %s lp
mkdir bin && ln -s %s/bin-new bin/new && mkdir %s/bin-new`,
		root, elsewhere, e.SpoolDir, elsewhere, elsewhere, e.SpoolDir, elsewhere, elsewhere))

	rcpts := []string{"nobody@mx.test.example", "daemon@mx.test.example", "lp@mx.test.example", "bin@mx.test.example"}
	if err := smtp.SendMail(addr, nil, "s@client.example", rcpts, []byte("Subject: links\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	queued := e.Queued()
	// qrun exits 69 when a recipient failed for good, as these must.
	if out, code := e.Qrun("-once"); code != 0 && code != 69 {
		t.Fatalf("qrun -once: %d %s\n%s", code, out, e.Log())
	}
	if n := len(entries(filepath.Join(root, "nobody", "new"))); n != 1 {
		t.Errorf("the honest Maildir holds %d messages, want 1\n%s", n, e.Log())
	}
	for _, d := range []string{"new", "cur"} {
		if _, err := os.Lstat(filepath.Join(e.SpoolDir, d)); err == nil {
			t.Errorf("qrun made %s/ inside the spool", d)
		}
	}
	if c := entries(filepath.Join(e.SpoolDir, "corrupt")); len(c) > 0 {
		t.Errorf("files moved to corrupt/: %v", c)
	}
	for _, id := range entries(filepath.Join(e.SpoolDir, "queue")) {
		if !contains(queued, id) && !strings.Contains(id, ".") {
			t.Errorf("a file appeared in the spool's queue/: %s", id)
		}
	}
	for _, d := range []string{"daemon", "bin-new"} {
		if got := entries(filepath.Join(elsewhere, d)); len(got) > 0 && !(d == "daemon" && len(got) == 1 && got[0] == "new") {
			t.Errorf("written elsewhere (%s): %v", d, got)
		}
	}
	log := e.Log()
	for _, u := range []string{"daemon", "lp", "bin"} {
		if !strings.Contains(log, filepath.Join(root, u)) || !strings.Contains(log, "refused") {
			t.Errorf("the log does not say %s's Maildir was refused:\n%s", u, log)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestFileDeliveryLinkRefused: a /file alias inside file_dir whose
// directory was replaced (by mail) with a link elsewhere is refused; an
// mbox mailbox that is a link is refused too.
func TestFileDeliveryLinkRefused(t *testing.T) {
	e, _, addr, mail := localEnv(t)
	fileDir := filepath.Join(e.Dir, "files")
	os.Mkdir(fileDir, 0o775)
	os.Chmod(fileDir, 0o775)
	exec.Command("chown", "root:mail", fileDir).Run()
	elsewhere := filepath.Join(e.Dir, "elsewhere")
	os.Mkdir(elsewhere, 0o777)
	os.Chmod(elsewhere, 0o777)
	aliases := filepath.Join(e.Dir, "aliases")
	os.WriteFile(aliases, []byte("archive: "+fileDir+"/sub/box\n"), 0o644)
	e.Extra["local"] += fmt.Sprintf("file_dir = %q\n", fileDir)
	e.WriteConfig()
	asMail(t, fmt.Sprintf("ln -s %s %s/sub && ln -s %s/lp-box %s/lp", elsewhere, fileDir, elsewhere, mail))

	if err := smtp.SendMail(addr, nil, "s@client.example", []string{"archive@mx.test.example", "lp@mx.test.example"}, []byte("Subject: f\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	// qrun exits 69 when a recipient failed for good, as these must.
	if out, code := e.Qrun("-once"); code != 0 && code != 69 {
		t.Fatalf("qrun -once: %d %s\n%s", code, out, e.Log())
	}
	if got := entries(elsewhere); len(got) > 0 {
		t.Errorf("written through a link: %v\n%s", got, e.Log())
	}
	if !strings.Contains(e.Log(), "refused") {
		t.Errorf("the log does not say the deliveries were refused:\n%s", e.Log())
	}
}

// TestInitRefusesLinks: qrun -init, run by root on a spool where mail
// replaced hold/, corrupt/ and the lockfile with links, fails instead of
// reporting "spool ready".
func TestInitRefusesLinks(t *testing.T) {
	e := testenv.New(t)
	testenv.NeedRoot(t, "to act as mail")
	elsewhere := filepath.Join(e.Dir, "elsewhere")
	os.Mkdir(elsewhere, 0o777)
	os.Chmod(elsewhere, 0o777)
	asMail(t, fmt.Sprintf(`cd %s && rmdir hold corrupt && rm -f lock
ln -s %s hold && ln -s %s corrupt && ln -s %s/lock lock`, e.SpoolDir, elsewhere, elsewhere, elsewhere))
	out, code := e.Qrun("-init")
	if code == 0 || strings.Contains(out, "spool ready") {
		t.Fatalf("qrun -init on a spool of links: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "symbolic link") {
		t.Errorf("-init does not name the link:\n%s", out)
	}
	if got := entries(elsewhere); len(got) > 0 {
		t.Errorf("-init wrote through a link: %v", got)
	}
	// qrun -once refuses the spool too.
	if out, code := e.Qrun("-once"); code == 0 {
		t.Errorf("qrun -once on a spool of links: exit 0\n%s", out)
	}
}

// TestMboxHardLinkRefused: user mail links daemon's mailbox name to
// nobody's mailbox. A real qrun refuses to deliver daemon's mail into it,
// and qrun -check reports the link without offering to chown nobody's
// mail to daemon.
func TestMboxHardLinkRefused(t *testing.T) {
	e, _, addr, mail := localEnv(t)
	box := filepath.Join(mail, "nobody")
	os.WriteFile(box, []byte("From a@b Thu Jan  1 00:00:00 2026\nSubject: private\n\nsecret\n\n"), 0o660)
	os.Chmod(box, 0o660)
	exec.Command("chown", "nobody:mail", box).Run()
	asMail(t, fmt.Sprintf("ln %s %s/daemon", box, mail))
	before, _ := os.ReadFile(box)

	if err := smtp.SendMail(addr, nil, "s@client.example", []string{"daemon@mx.test.example"}, []byte("Subject: to daemon\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if out, code := e.Qrun("-once"); code != 0 && code != 69 {
		t.Fatalf("qrun -once: %d %s\n%s", code, out, e.Log())
	}
	if after, _ := os.ReadFile(box); string(after) != string(before) {
		t.Errorf("daemon's mail went into nobody's mailbox:\n%s", after)
	}
	if !strings.Contains(e.Log(), "hard links: refused") {
		t.Errorf("the log does not say the linked mailbox was refused:\n%s", e.Log())
	}
	out, _ := e.Qrun("-check")
	if !strings.Contains(out, filepath.Join(mail, "daemon")) || strings.Contains(out, "chown daemon") || strings.Contains(out, "chown 'daemon'") {
		t.Errorf("qrun -check on a hard-linked mailbox:\n%s", out)
	}
}

// TestRefusedAliasTargetBounceSaysLittle: an alias whose program is not in
// program_dir bounces. The sender (maybe hostile) reads only "local
// delivery refused", not program_dir's path or the program's name; the
// log has the detail.
func TestRefusedAliasTargetBounceSaysLittle(t *testing.T) {
	e, sink, addr, _ := localEnv(t)
	progs := filepath.Join(e.Dir, "smrsh-secret-dir")
	os.Mkdir(progs, 0o755)
	aliases := filepath.Join(e.Dir, "aliases")
	os.WriteFile(aliases, []byte("vac: |/usr/bin/hidden-tool --flag\n"), 0o644)
	e.Extra["local"] += fmt.Sprintf("program_dir = %q\n", progs)
	e.WriteConfig()
	if err := smtp.SendMail(addr, nil, "s@client.example", []string{"vac@mx.test.example"}, []byte("Subject: v\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if out, code := e.Qrun("-once"); code != 0 && code != 69 {
		t.Fatalf("qrun -once: %d %s\n%s", code, out, e.Log())
	}
	msgs := sink.Messages()
	if len(msgs) != 1 || msgs[0].Rcpts[0] != "s@client.example" {
		t.Fatalf("want one bounce to the sender, got %+v\n%s", msgs, e.Log())
	}
	dsn := string(msgs[0].Data)
	if !strings.Contains(dsn, "local delivery refused") || strings.Contains(dsn, "smrsh-secret-dir") || strings.Contains(dsn, "hidden-tool") {
		t.Errorf("the bounce says too much or not enough:\n%s", dsn)
	}
	if log := e.Log(); !strings.Contains(log, "smrsh-secret-dir") || !strings.Contains(log, "hidden-tool") {
		t.Errorf("the log lacks the detail:\n%s", log)
	}
}
