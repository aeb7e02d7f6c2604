package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
)

// programArg0 is the argv[0] under which qrun's binary, re-executed,
// acts as the program wrapper instead of qrun.
const programArg0 = "qrun (sandboxed program)"

// ProgramWrapper is how qrun runs a delivery program in the narrower
// layer p (ForProgram): through its own binary exe, re-executed as the
// wrapper, which adds p's Landlock layer to the one it inherited and then
// executes the program. Go cannot run code between fork and exec, hence
// the extra exec (about a millisecond per program delivery). exe must be
// executable under qrun's own layer (ForRunner's Exec).
func ProgramWrapper(exe string, p Policy) func(path string, argv []string) (string, []string) {
	spec, _ := json.Marshal(p)
	return func(path string, argv []string) (string, []string) {
		return exe, append([]string{programArg0, string(spec), path}, argv...)
	}
}

// ProgramMain is the wrapper's main: when the process was started as the
// wrapper (argv[0]), it confines itself and executes the program, and
// returns only on failure, with the exit code (75: the delivery is
// tried again later). ok is false for any other start.
func ProgramMain() (code int, ok bool) {
	if len(os.Args) < 4 || os.Args[0] != programArg0 {
		return 0, false
	}
	var p Policy
	if err := json.Unmarshal([]byte(os.Args[1]), &p); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox: program policy:", err)
		return 75, true
	}
	if _, err := Apply(p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 75, true
	}
	path, argv := os.Args[2], os.Args[3:]
	err := syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "sandbox: exec %s: %v\n", path, err)
	return 126, true
}
