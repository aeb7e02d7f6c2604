package check

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"smtp-bs/pkg/config"
)

// Main is all of "-check" for smtp-bs and qrun (prog names which): it
// loads the config as the program would, audits the installation as the
// current user (root or the run user: call it before dropping
// privileges), prints the report to w and returns the exit status.
func Main(w io.Writer, prog, cfgPath string, explicit bool, probe ResolverProbe) int {
	cfg, used, f := load(cfgPath, explicit)
	if f != nil {
		rep := &Report{Findings: []Finding{*f}}
		rep.Write(w, prog)
		return rep.Exit()
	}
	exe, err := os.Executable()
	if err != nil {
		exe = prog
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	other := "qrun"
	if prog == "qrun" {
		other = "smtp-bs"
	}
	sibling := filepath.Join(filepath.Dir(exe), other)
	qrun := ""
	if prog == "qrun" {
		qrun = exe
	} else if _, err := os.Stat(sibling); err == nil {
		qrun = sibling
	}
	a := &Audit{Config: cfg, ConfigPath: used, Binaries: []string{exe, sibling}, Qrun: qrun, ProbeResolver: probe}
	fmt.Fprintf(w, "%s -check: config %s, run_as %s, checked as %s\n", prog, orDefault(used, "(embedded defaults)"), cfg.RunAs, whoami())
	rep := a.Run()
	rep.Write(w, prog)
	return rep.Exit()
}

// load reads the config as both programs do, telling a file the current
// user may not read (a permission problem) from one that is wrong (a
// config problem). used is "" when the embedded defaults are in use.
func load(path string, explicit bool) (cfg *config.Config, used string, f *Finding) {
	_, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		used = ""
	case errors.Is(err, fs.ErrPermission):
		return nil, "", &Finding{Kind: Permission, Path: path,
			Problem: fmt.Sprintf("cannot read the config as %s (%v); the run user must read it (run -check as root or as the run user)", whoami(), err),
			Fix:     fmt.Sprintf("chown root:mail %s && chmod 0640 %s", quote(path), quote(path))}
	default:
		used = path
	}
	cfg, err = config.Load(path, explicit)
	if err != nil {
		fix := "edit " + quote(path)
		var ce *config.Error
		if errors.As(err, &ce) && ce.Line > 0 {
			fix = fmt.Sprintf("edit %s, line %d", quote(path), ce.Line)
		}
		return nil, "", &Finding{Kind: Config, Problem: err.Error(), Fix: fix}
	}
	return cfg, used, nil
}
