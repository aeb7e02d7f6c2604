package launchers

import (
	"regexp"
	"testing"
)

// The xinetd entry says how to move the port: xinetd needs type =
// UNLISTED with port = (TestXinetd runs the entry on another port with
// exactly these attributes, so the advice is proven to work).
func TestXinetdEntrySaysHowToMoveThePort(t *testing.T) {
	s := contrib(t, "xinetd/smtp-bs")
	for _, want := range []string{`(?m)^\s*#\s*type\s*=\s*UNLISTED$`, `(?m)^\s*#\s*port\s*=\s*\d+$`} {
		if !regexp.MustCompile(want).MatchString(s) {
			t.Errorf("contrib/xinetd/smtp-bs does not say %s", want)
		}
	}
	if got := xinetdConf(t, "2525", "/x/smtp-bs", "/x/c.toml"); !regexp.MustCompile(`(?m)^\s*type = UNLISTED$`).MatchString(got) {
		t.Error("the test entry no longer uses type = UNLISTED: the advice is untested")
	}
}
