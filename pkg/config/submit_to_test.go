package config

import "testing"

func TestLocalSubmitTo(t *testing.T) {
	c, err := Parse("empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Local.SubmitTo != "127.0.0.1:25" {
		t.Errorf("default submit_to = %q", c.Local.SubmitTo)
	}
	for _, ok := range []string{"127.0.0.1:2525", "[::1]:25", "localhost:587"} {
		c, err := Parse("t", []byte("[local]\nsubmit_to = \""+ok+"\"\n"))
		if err != nil || c.Local.SubmitTo != ok {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1", "127.0.0.1:", ":25", "127.0.0.1:smtp", "127.0.0.1:0", "127.0.0.1:70000", "::1:25"} {
		_, err := Parse("t", []byte("[local]\n# where sendmail submits\nsubmit_to = \""+bad+"\"\n"))
		e, ok := err.(*Error)
		if !ok || e.Key != "local.submit_to" || e.Line != 3 {
			t.Errorf("%q: got %v, want an error naming local.submit_to on line 3", bad, err)
		}
	}
}
