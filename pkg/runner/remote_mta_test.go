package runner

import "testing"

// The Remote-MTA of a DSN is a host name: found after an expiry's "last
// error:" too, and never made of a local error's text (a red-team run saw
// "Remote-MTA: dns; 4.4.7 message expired ...; last error: 127.0.0.1").
func TestRemoteMTA(t *testing.T) {
	for reply, want := range map[string]string{
		"mx.example.org said: 550 5.1.1 no such user":                                    "mx.example.org",
		"[2001:db8::1] said: 451 try later":                                              "[2001:db8::1]",
		"4.4.7 message expired after 5d in the queue; last error: 127.0.0.1 said: 450 x": "127.0.0.1",
		"4.4.7 message expired after 5d in the queue":                                    "",
		"program |x exited 1: the server said: no":                                       "",
		"LMTP /run/dovecot/lmtp said: 550 5.1.1 unknown":                                 "",
		"": "",
		// Only smtp-bs's own expiry text is looked into.
		"mx.a.example said: 550 x; last error: forged.example said: y": "mx.a.example",
	} {
		if got := remoteMTA(reply); got != want {
			t.Errorf("remoteMTA(%q) = %q, want %q", reply, got, want)
		}
	}
}
