package session

import (
	"bytes"
	"testing"
)

// FuzzBodyCheck: the body's fast scan (bytes.IndexByte) gives exactly the
// verdict of the byte-by-byte rule, however the content is cut into
// writes: no NUL, and every CR and every LF part of a CRLF, the first
// fault naming the reply. Only accepted content reaches the spool.
func FuzzBodyCheck(f *testing.F) {
	for _, s := range []string{"a\r\nb\r\n", "a\nb", "a\rb\r\n", "x\r", "\r\n\r\n", "a\x00b\r\n", "\r", "\n", "", "ab\r\r\n", "line\r\n.\r\n"} {
		f.Add([]byte(s), uint16(1))
	}
	f.Fuzz(func(t *testing.T, content []byte, cut uint16) {
		var spooled bytes.Buffer
		c := newBodyCheck(&spooled, 30)
		c.inHeader = false
		at := int(cut) % (len(content) + 1)
		var err error
		for _, part := range [][]byte{content[:at], content[at:]} {
			if _, err = c.Write(part); err != nil {
				break
			}
		}
		if err == nil {
			if ferr := c.finish(); ferr != nil {
				err = ferr
			}
		}
		if want := firstFault(content); err != want {
			t.Fatalf("%q cut at %d: err %v, want %v", content, at, err, want)
		}
		if err == nil && !bytes.Equal(spooled.Bytes(), content) {
			t.Fatalf("spooled %q, want %q", spooled.Bytes(), content)
		}
	})
}

// firstFault is the rule byte by byte: the reply for the first byte that
// breaks it (nil when none does, as an error interface holding no value).
func firstFault(b []byte) error {
	prevCR := false
	for _, c := range b {
		if prevCR && c != '\n' {
			return errBareEOL
		}
		switch c {
		case 0:
			return errNUL
		case '\n':
			if !prevCR {
				return errBareEOL
			}
		}
		prevCR = c == '\r'
	}
	if prevCR {
		return errBareEOL
	}
	return nil
}
