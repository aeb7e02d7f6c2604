// Package man tests the manual pages in man/: each renders without a
// warning under groff and man-db, smtp-bs.toml(5) and contrib/smtp-bs.toml
// list exactly the keys pkg/config decodes, and make install puts the
// pages where man finds them.
package man

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
)

var pages = []string{"smtp-bs.8", "qrun.8", "smtp-bs-sendmail.8", "smtp-bs.toml.5", "smtp-bs-queue.5"}

func page(name string) string { return filepath.Join(testenv.Root(), "man", name) }

// needGroff checks that groff can format man pages and reports warnings:
// a page with a known fault must draw one.
func needGroff(t *testing.T) string {
	groff := testenv.Need(t, "groff")
	bad := filepath.Join(t.TempDir(), "bad.8")
	os.WriteFile(bad, []byte(".TH BAD 8\n.SH NAME\nbad \\- bad\n.XYZZY\n"), 0o644)
	out, _ := exec.Command(groff, "-ww", "-man", "-z", bad).CombinedOutput()
	if !strings.Contains(string(out), "warning") {
		testenv.Missing(t, "groff -ww -man does not warn about an unknown macro: "+string(out), "groff-base")
	}
	return groff
}

func TestPagesRenderWithoutWarnings(t *testing.T) {
	groff := needGroff(t)
	man := testenv.Need(t, "man")
	for _, p := range pages {
		out, err := exec.Command(groff, "-ww", "-man", "-z", page(p)).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff -ww -man %s: %v\n%s", p, err, out)
		}
		cmd := exec.Command(man, "--warnings", "-l", page(p))
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LANG=C.UTF-8")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		text, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("man --warnings -l %s: %v\n%s", p, err, stderr.String())
		}
		for _, want := range []string{"NAME", "SEE ALSO"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("%s rendered has no %s section:\n%s", p, want, text)
			}
		}
	}
}

// Every section-8 page documents the exit codes and the options its -h
// lists.
func TestCommandPagesHaveExitStatus(t *testing.T) {
	for _, p := range []string{"smtp-bs.8", "qrun.8", "smtp-bs-sendmail.8"} {
		b, err := os.ReadFile(page(p))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), ".SH EXIT STATUS") || !strings.Contains(string(b), ".B 78") {
			t.Errorf("%s: no EXIT STATUS section with 78", p)
		}
	}
}

// manKeys reads the keys smtp-bs.toml(5) documents: a .TP whose next line
// is ".B key", under ".SS [table]" (".SS Top level" for the top level).
func manKeys(t *testing.T) []string {
	f, err := os.Open(page("smtp-bs.toml.5"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var keys []string
	table, afterTP := "", false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ".SH"):
			table = "-"
		case strings.HasPrefix(line, ".SS "):
			table = strings.Trim(strings.TrimPrefix(line, ".SS "), "[]\" ")
			if table == "Top level" {
				table = ""
			}
		case line == ".TP":
			afterTP = true
			continue
		case afterTP && strings.HasPrefix(line, ".B ") && table != "-":
			k := strings.ReplaceAll(strings.TrimPrefix(line, ".B "), `\-`, "-")
			if table != "" {
				k = table + "." + k
			}
			keys = append(keys, k)
		}
		afterTP = false
	}
	return keys
}

// contribKeys reads the keys contrib/smtp-bs.toml shows: "# key = ..." or
// "# Example: key = ..." under a [table] line, a "# Example: [table.sub]"
// for a table of names, and the "#   key  meaning" list of the [[milter]]
// keys.
func contribKeys(t *testing.T) []string {
	f, err := os.Open(filepath.Join(testenv.Root(), "contrib", "smtp-bs.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyRe := regexp.MustCompile(`^#? ?(?:Example: )?([a-z_]+) = `)
	subRe := regexp.MustCompile(`^# Example: \[([a-z_]+\.[a-z_]+)\]$`)
	milterRe := regexp.MustCompile(`^#   ([a-z_]+) +\S`)
	var keys []string
	table, inMilter, inNames := "", false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "[[milter]] table has these keys") {
			inMilter = true
			continue
		}
		if inMilter {
			if m := milterRe.FindStringSubmatch(line); m != nil {
				keys = append(keys, "milter."+m[1])
				continue
			}
			if !strings.HasPrefix(line, "#    ") {
				inMilter = false
			}
		}
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(line, "[] ")
			continue
		}
		if m := subRe.FindStringSubmatch(line); m != nil {
			keys = append(keys, m[1])
			inNames = true // the examples that follow are the admin's names
			continue
		}
		if inNames && strings.HasPrefix(line, "# Example: ") {
			continue
		}
		inNames = false
		if m := keyRe.FindStringSubmatch(line); m != nil {
			k := m[1]
			if table != "" {
				k = table + "." + k
			}
			// An example may repeat a key (one host, then a list).
			if k == "milter" || strings.HasPrefix(line, "#   ") || slices.Contains(keys, k) {
				continue
			}
			keys = append(keys, k)
		}
	}
	return keys
}

// compare reports keys of pkg/config missing from got, and keys in got
// that pkg/config does not know.
func compare(t *testing.T, what string, got []string) {
	t.Helper()
	want := config.Keys()
	for _, k := range want {
		if !slices.Contains(got, k) {
			t.Errorf("%s does not document %s", what, k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			t.Errorf("%s documents %s, which pkg/config does not know", what, k)
		}
	}
	seen := map[string]bool{}
	for _, k := range got {
		if seen[k] {
			t.Errorf("%s documents %s twice", what, k)
		}
		seen[k] = true
	}
}

func TestManPageHasEveryKey(t *testing.T) {
	keys := manKeys(t)
	if len(keys) < 40 {
		t.Fatalf("found only %d keys in smtp-bs.toml.5: %v", len(keys), keys)
	}
	compare(t, "man/smtp-bs.toml.5", keys)
}

func TestContribConfigHasEveryKey(t *testing.T) {
	keys := contribKeys(t)
	if len(keys) < 40 {
		t.Fatalf("found only %d keys in contrib/smtp-bs.toml: %v", len(keys), keys)
	}
	compare(t, "contrib/smtp-bs.toml", keys)
}

// Every key of the man page says its default and gives an example.
func TestManPageDefaultsAndExamples(t *testing.T) {
	b, err := os.ReadFile(page("smtp-bs.toml.5"))
	if err != nil {
		t.Fatal(err)
	}
	entries := strings.Split(string(b), "\n.TP\n")[1:]
	for _, e := range entries {
		name, _, _ := strings.Cut(e, "\n")
		if !strings.Contains(e, "Default") && !strings.Contains(e, "Required") {
			t.Errorf("%s: no default", name)
		}
		if !strings.Contains(e, "Example:") {
			t.Errorf("%s: no example", name)
		}
	}
}

// make install puts the pages under $PREFIX/share/man, man finds them
// there, and make uninstall removes them.
func TestInstalledPagesFoundByMan(t *testing.T) {
	man := testenv.Need(t, "man")
	testenv.NeedRoot(t, "contrib/install.sh's spool step runs qrun -init as mail under DESTDIR")
	d := t.TempDir()
	// qrun -init runs as mail under DESTDIR: mail must reach it.
	for p := d; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	bin := filepath.Dir(testenv.Bin(t, "smtp-bs"))
	env := append(os.Environ(), "PREFIX=/usr/local", "SBINDIR=", "UNITDIR=", "DATADIR=", "DOCDIR=", "MANDIR=", "SPOOLDIR=", "RUN_AS=",
		"DESTDIR="+d, "BUILD="+bin)
	sh := func(action string) {
		cmd := exec.Command("sh", filepath.Join(testenv.Root(), "contrib", "install.sh"), action)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install.sh %s: %v\n%s", action, err, out)
		}
	}
	sh("install")
	mandir := filepath.Join(d, "usr/local/share/man")
	for _, p := range pages {
		sec := p[strings.LastIndexByte(p, '.')+1:]
		if _, err := os.Stat(filepath.Join(mandir, "man"+sec, p)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	for _, tc := range []struct{ sec, name, want string }{
		{"8", "smtp-bs", "one SMTP session"},
		{"8", "qrun", "queue runner"},
		{"8", "smtp-bs-sendmail", "local submission"},
		{"5", "smtp-bs.toml", "max_message_bytes"},
		{"5", "smtp-bs-queue", "smtp-bs-envelope 2"},
	} {
		cmd := exec.Command(man, "-M", mandir, tc.sec, tc.name)
		cmd.Env = append(os.Environ(), "MANWIDTH=200", "MANPAGER=cat", "PAGER=cat", "LANG=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(strings.ReplaceAll(string(out), "‐", "-"), tc.want) {
			t.Errorf("man -M %s %s %s: %v\n%.600s", mandir, tc.sec, tc.name, err, out)
		}
	}
	sh("uninstall")
	for _, p := range pages {
		sec := p[strings.LastIndexByte(p, '.')+1:]
		if _, err := os.Stat(filepath.Join(mandir, "man"+sec, p)); err == nil {
			t.Errorf("uninstall left %s", p)
		}
	}
}
