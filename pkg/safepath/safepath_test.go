package safepath

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoLinkFollowed puts a link at each place a path can hold one and
// expects each open to be refused as ErrLink, with nothing made at the
// link's target.
func TestNoLinkFollowed(t *testing.T) {
	top := t.TempDir()
	root := filepath.Join(top, "root")
	target := filepath.Join(top, "target")
	for _, d := range []string{root, target, filepath.Join(root, "real")} {
		os.Mkdir(d, 0o755)
	}
	os.Symlink(target, filepath.Join(root, "dirlink"))
	os.Symlink(target, filepath.Join(root, "real", "sub"))
	os.Symlink(filepath.Join(target, "file"), filepath.Join(root, "real", "filelink"))
	os.WriteFile(filepath.Join(root, "plain"), nil, 0o644)

	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, rel := range []string{"dirlink", "dirlink/x", "real/sub", "real/sub/new", "plain"} {
		for _, create := range []bool{false, true} {
			if d, err := r.Sub(rel, create, 0o700); !IsLink(err) {
				t.Errorf("Sub(%q, create %v): %v, want ErrLink", rel, create, err)
				if d != nil {
					d.Close()
				}
			}
		}
	}
	real, err := r.Sub("real", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY | os.O_CREATE, os.O_WRONLY | os.O_CREATE | os.O_EXCL} {
		if f, err := real.OpenFile("filelink", flag, 0o600); f != nil || (!IsLink(err) && !os.IsExist(err)) {
			t.Errorf("OpenFile(filelink, %#x): %v", flag, err)
		}
	}
	if _, err := r.Sub("../target", true, 0o700); err == nil {
		t.Error(`".." accepted`)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("made through a link: %v", ents)
	}
}

// TestSubCreatesWithExactMode: a made directory gets the mode asked for
// whatever the umask, and keeps a setgid bit its parent passes on.
func TestSubCreatesWithExactMode(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	root := t.TempDir()
	unix.Chmod(root, 0o2775)
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.Sub("a/b", true, 0o770)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, p := range []string{"a", "a/b"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || fi.Mode().Perm() != 0o770 || fi.Mode()&os.ModeSetgid == 0 {
			t.Errorf("%s: %v %v, want drwxrws---", p, fi.Mode(), err)
		}
	}
}
