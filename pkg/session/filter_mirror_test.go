package session

import "testing"

// The filter must split the stream into commands and content exactly where
// go-smtp does; these are forms where an earlier version disagreed.
func TestFilterMirrorsGoSMTP(t *testing.T) {
	const pm = "RCPT TO:<Postmaster>\r\n" // 22 bytes, rewritten only as a command
	const pmOut = "RCPT TO:<Postmaster@mx.example>\r\n"
	cases := []struct{ name, in, want string }{
		{"BDAT chunk", "BDAT 22\r\n" + pm, "BDAT 22\r\n" + pm},
		{"BDAT LAST chunk", "BDAT 22 last\r\n" + pm, "BDAT 22 last\r\n" + pm},
		{"BDAT two spaces", "BDAT  22\r\n" + pm, "BDAT  22\r\n" + pm},
		{"BDATX is no BDAT", "BDATX 22\r\n" + pm, "BDATX 22\r\n" + pmOut},
		{"BDAT tab is no BDAT", "BDAT\t22\r\n" + pm, "BDAT\t22\r\n" + pmOut},
		{"BDAT three args", "BDAT 22 LAST x\r\n" + pm, "BDAT 22 LAST x\r\n" + pmOut},
		{"BDAT negative", "BDAT -22\r\n" + pm, "BDAT -22\r\n" + pmOut},
		{"BDAT over 32 bits", "BDAT 4294967296\r\n" + pm, "BDAT 4294967296\r\n" + pmOut},
		{"BDAT zero", "BDAT 0\r\n" + pm, "BDAT 0\r\n" + pmOut},
		{"source route, two spaces", "RCPT  TO:<@a.example:u@b.example>\r\n", "RCPT TO:<" + sourceRouteMarker + ">\r\n"},
		{"source route, space after colon", "RCPT TO: <@a.example:u@b.example>\r\n", "RCPT TO:<" + sourceRouteMarker + ">\r\n"},
		{"source route, tab", "rcpt to:\t<@a.example,@c.example:u@b.example> NOTIFY=NEVER\r\n", "RCPT TO:<" + sourceRouteMarker + ">\r\n"},
		{"source route, no brackets", "RCPT TO:@a.example:u@b.example\r\n", "RCPT TO:<" + sourceRouteMarker + ">\r\n"},
		{"postmaster, spaces", "RCPT  TO: <postmaster>\r\n", "RCPT TO:<postmaster@mx.example>\r\n"},
		{"not RCPT", "RCPTX TO:<@a:b@c>\r\n", "RCPTX TO:<@a:b@c>\r\n"},
		{"plain", "RCPT TO:<u@b.example>\r\n", "RCPT TO:<u@b.example>\r\n"},
	}
	for _, c := range cases {
		if got := feedAll(t, c.in, 354); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
