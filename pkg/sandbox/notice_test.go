package sandbox_test

import (
	"path/filepath"
	"testing"

	"smtp-bs/pkg/sandbox"
)

func TestNewNotice(t *testing.T) {
	stamp := filepath.Join(t.TempDir(), "sandbox-level")
	full := sandbox.Level{ABI: 7, FS: true, Net: true, Seccomp: true}
	old := sandbox.Level{ABI: 3, FS: true, Seccomp: true, Missing: []string{"landlock ABI 3: no TCP rules (needs ABI 4)"}}
	none := sandbox.Level{Missing: []string{"landlock: not offered", "seccomp: not offered"}}
	for i, c := range []struct {
		l    sandbox.Level
		want bool
	}{
		{full, false}, // nothing missing: nothing to say
		{old, true},   // first time
		{old, false},  // said already
		{old, false},
		{none, true}, // changed
		{none, false},
		{old, true},
	} {
		if got := sandbox.NewNotice(stamp, c.l); got != c.want {
			t.Errorf("step %d (%s): %v, want %v", i, c.l, got, c.want)
		}
	}
}
