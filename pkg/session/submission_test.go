package session

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
)

func fixHeader(t *testing.T, chunks ...string) string {
	t.Helper()
	var b bytes.Buffer
	h := newHeaderFixer(&b, "mx.example.org", "ann@example.org", time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC))
	for _, c := range chunks {
		if n, err := h.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	if err := h.finish(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHeaderFixer(t *testing.T) {
	msgID := regexp.MustCompile(`Message-ID: <20261206130000\.[0-9a-f]{16}@mx\.example\.org>\r\n`)
	// Nothing there: all three, just before the empty line.
	got := fixHeader(t, "Subject: hi\r\n\r\nbody\r\nFrom: not a header\r\n")
	if !strings.HasPrefix(got, "Subject: hi\r\nDate: Sun, 06 Dec 2026 13:00:00 +0000\r\nMessage-ID: <") ||
		!strings.HasSuffix(got, "From: <ann@example.org>\r\n\r\nbody\r\nFrom: not a header\r\n") || !msgID.MatchString(got) {
		t.Errorf("got %q", got)
	}
	// All there, in any case, split across writes: nothing added.
	in := "from: Ann <ann@example.org>\r\nDATE: Sun, 06 Dec 2026 12:00:00 +0000\r\nMessage-Id: <x@y>\r\n\r\nbody\r\n"
	if got := fixHeader(t, in[:7], in[7:40], in[40:85], in[85:]); got != in {
		t.Errorf("changed a complete header:\n%q", got)
	}
	// A folded Subject that mentions "Date:" on its continuation line
	// does not count as a Date: field; the empty line split from its LF.
	got = fixHeader(t, "Subject: x\r\n Date: no\r\nFrom: a@b\r\nMessage-ID: <x@y>\r", "\n\r\nbody")
	if !strings.Contains(got, "Message-ID: <x@y>\r\nDate: Sun") {
		t.Errorf("continuation line taken for a field: %q", got)
	}
	// All header, no body: added at the end.
	if got := fixHeader(t, "Subject: x\r\n"); !strings.HasPrefix(got, "Subject: x\r\nDate: ") || !strings.HasSuffix(got, "From: <ann@example.org>\r\n") {
		t.Errorf("all header: %q", got)
	}
}
