package sandbox

import (
	"os"
	"strings"
)

// NewNotice reports whether what l leaves unenforced should be logged:
// the first time, and whenever it changes (a new kernel), as remembered in
// the file at path (the caller's, e.g. in the spool, written before the
// sandbox takes that right away). A kernel without Landlock would
// otherwise add the same warning to the log with every connection. Two
// processes racing may both log it; nothing worse.
func NewNotice(path string, l Level) bool {
	if len(l.Missing) == 0 {
		return false
	}
	text := l.String() + "\n" + strings.Join(l.Missing, "\n") + "\n"
	if b, err := os.ReadFile(path); err == nil && string(b) == text {
		return false
	}
	os.WriteFile(path, []byte(text), 0o600)
	return true
}
