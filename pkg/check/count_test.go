package check

import "testing"

func TestCountPlural(t *testing.T) {
	for _, tc := range []struct {
		n          int
		what, want string
	}{{0, "mailbox", "0 mailboxes"}, {1, "mailbox", "1 mailbox"}, {2, "file", "2 files"}, {1, "file", "1 file"}} {
		if got := count(tc.n, tc.what); got != tc.want {
			t.Errorf("count(%d, %q) = %q, want %q", tc.n, tc.what, got, tc.want)
		}
	}
}
