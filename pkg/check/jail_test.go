package check

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// jailInstall is newInstall with the spool moved into a jail, which has
// the copies [local] domains need, and a milter socket mail may reach.
func jailInstall(t *testing.T) (in *install, jail, sock string) {
	t.Helper()
	in = newInstall(t)
	jail = filepath.Join(in.root, "jail")
	mkdir(t, filepath.Join(jail, "var", "spool"), 0o755, "root:root")
	inside := filepath.Join(jail, "var", "spool", "smtp-bs")
	sh(t, fmt.Sprintf("mv %s %s", in.spool, inside))
	mkdir(t, filepath.Join(jail, "etc"), 0o755, "root:root")
	for _, p := range []string{"/etc/passwd", "/etc/group", in.aliases} {
		mkdir(t, filepath.Dir(filepath.Join(jail, p)), 0o755, "root:root")
		sh(t, fmt.Sprintf("cp %s %s", p, filepath.Join(jail, p)))
	}
	sockDir := filepath.Join(in.root, "run", "milter")
	mkdir(t, sockDir, 0o755, "root:root")
	sock = filepath.Join(sockDir, "milter.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	chmod(t, sock, 0o666)
	src, _ := os.ReadFile(in.conf)
	conf := strings.Replace(string(src), fmt.Sprintf("dir = %q", in.spool), fmt.Sprintf("dir = %q", inside), 1)
	conf = fmt.Sprintf("[[milter]]\nname = \"m\"\nsocket = \"unix:%s\"\n[[milter]]\nname = \"gone\"\nsocket = \"unix:%s\"\n\n", sock, filepath.Join(sockDir, "gone.sock")) +
		conf + fmt.Sprintf("[chroot]\ndir = %q\n", jail)
	write(t, in.conf, conf, 0o640, "root:mail")
	in.spool = inside
	return in, jail, sock
}

func report(rep *Report) string {
	var b strings.Builder
	rep.Write(&b, "test")
	return b.String()
}

func TestJailAndMilterPass(t *testing.T) {
	in, jail, sock := jailInstall(t)
	rep := in.audit(t).Run()
	out := report(rep)
	if len(rep.Findings) > 0 {
		t.Fatalf("a correct jail has findings:\n%s", out)
	}
	for _, want := range []string{"ok    chroot " + jail, "ok    milter m: " + sock + " reachable by mail", "note  milter gone:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestJailAndMilterProblems(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(in *install, jail, sock string) string
		code   int
		fix    string
	}{
		{"jail owned by mail", func(in *install, jail, sock string) string { sh(t, "chown mail "+jail); return jail }, 77, "chown root:root"},
		{"jail group-writable", func(in *install, jail, sock string) string { chmod(t, jail, 0o775); return jail }, 77, "chmod 0755"},
		{"a file of mail's in the jail", func(in *install, jail, sock string) string {
			write(t, filepath.Join(jail, "etc", "planted"), "x", 0o644, "mail:mail")
			return jail
		}, 77, "chown root:root"},
		{"spool unreachable in the jail", func(in *install, jail, sock string) string {
			p := filepath.Join(jail, "var", "spool")
			chmod(t, p, 0o700)
			return p
		}, 77, "chmod o+x"},
		{"no passwd in the jail", func(in *install, jail, sock string) string {
			os.Remove(filepath.Join(jail, "etc", "passwd"))
			return jail
		}, 78, "mkjail.sh"},
		{"jail missing", func(in *install, jail, sock string) string { os.RemoveAll(jail); return jail }, 78, "mkjail.sh"},
		{"milter socket closed to mail", func(in *install, jail, sock string) string { chmod(t, sock, 0o600); return sock }, 77, "usermod -a -G root mail"},
		{"milter socket directory closed to mail", func(in *install, jail, sock string) string {
			chmod(t, filepath.Dir(sock), 0o700)
			return sock
		}, 77, "chmod o+x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, jail, sock := jailInstall(t)
			path := c.break_(in, jail, sock)
			rep := in.audit(t).Run()
			out := report(rep)
			if rep.Exit() != c.code {
				t.Errorf("exit %d, want %d:\n%s", rep.Exit(), c.code, out)
			}
			found := false
			for _, f := range rep.Findings {
				if f.Path == path && strings.Contains(f.Fix, c.fix) {
					found = true
				}
			}
			if !found {
				t.Errorf("no finding for %s with a fix containing %q:\n%s", path, c.fix, out)
			}
		})
	}
}
