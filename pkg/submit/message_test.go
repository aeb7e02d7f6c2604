package submit

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func render(t *testing.T, m *Message) string {
	t.Helper()
	var b bytes.Buffer
	n, err := m.WriteTo(&b)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(b.Len()) || n != m.Size() {
		t.Errorf("WriteTo wrote %d bytes, says %d, Size says %d", b.Len(), n, m.Size())
	}
	return b.String()
}

func TestRead(t *testing.T) {
	cases := []struct {
		name       string
		in         string
		ignoreDots bool
		want       string
	}{
		{"LF becomes CRLF", "Subject: x\n\nbody\n", false, "Subject: x\r\n\r\nbody\r\n"},
		{"CRLF stays", "Subject: x\r\n\r\nbody\r\n", false, "Subject: x\r\n\r\nbody\r\n"},
		{"lone CR ends a line", "Subject: x\n\n10%\r50%\r100%\n", false, "Subject: x\r\n\r\n10%\r\n50%\r\n100%\r\n"},
		{"CR CR LF", "Subject: x\n\na\r\r\nb\n", false, "Subject: x\r\n\r\na\r\n\r\nb\r\n"},
		{"no final newline", "Subject: x\n\nbody", false, "Subject: x\r\n\r\nbody\r\n"},
		{"headers only, as cron writes", "To: root\nSubject: Cron <root@h> true\n", false, "To: root\r\nSubject: Cron <root@h> true\r\n"},
		{"folded header", "Subject: a\n  b\n\tc\n\nx\n", false, "Subject: a\r\n  b\r\n\tc\r\n\r\nx\r\n"},
		{"dot ends the input", "Subject: x\n\na\n.\nb\n", false, "Subject: x\r\n\r\na\r\n"},
		{"dot CRLF ends the input", "Subject: x\r\n\r\na\r\n.\r\nb\r\n", false, "Subject: x\r\n\r\na\r\n"},
		{"dot with -i is data", "Subject: x\n\na\n.\nb\n", true, "Subject: x\r\n\r\na\r\n.\r\nb\r\n"},
		{"dot-leading lines are data", "Subject: x\n\n..\n.a\n", false, "Subject: x\r\n\r\n..\r\n.a\r\n"},
		{"dot first: empty message", ".\nSubject: x\n", false, ""},
		{"no headers: all body", "hello\nworld\n", false, "\r\nhello\r\nworld\r\n"},
		{"empty line first", "\nhello\n", false, "\r\nhello\r\n"},
		{"non-header line ends headers", "Subject: x\nthis is body\n", false, "Subject: x\r\n\r\nthis is body\r\n"},
		{"From_ line dropped", "From bob Mon Jan  1 00:00:00 2024\nSubject: x\n\nb\n", false, "Subject: x\r\n\r\nb\r\n"},
		{"From_ later is body", "Subject: x\n\nFrom here\n", false, "Subject: x\r\n\r\nFrom here\r\n"},
		{"8-bit body", "Subject: x\n\nçà ü €\n", false, "Subject: x\r\n\r\nçà ü €\r\n"},
		{"empty input", "", false, ""},
		{"NUL dropped", "Subject: x\n\na\x00b\n\x00\n", false, "Subject: x\r\n\r\nab\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range []func(string) *strings.Reader{strings.NewReader} {
				m, err := Read(r(c.in), ReadOptions{IgnoreDots: c.ignoreDots})
				if err != nil {
					t.Fatal(err)
				}
				if got := render(t, m); got != c.want {
					t.Errorf("got  %q\nwant %q", got, c.want)
				}
			}
			// One byte at a time: line assembly does not depend on reads.
			m, err := Read(iotest.OneByteReader(strings.NewReader(c.in)), ReadOptions{IgnoreDots: c.ignoreDots})
			if err != nil {
				t.Fatal(err)
			}
			if got := render(t, m); got != c.want {
				t.Errorf("one byte at a time: got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestReadHeaders(t *testing.T) {
	m, err := Read(strings.NewReader("To: a@x,\n  b@y\nBCC: secret@z\nbcc: other@z\nSubject: hi\n\nbody\n"), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Get("to"); len(got) != 1 || got[0] != "a@x,  b@y" {
		t.Errorf("Get(to) = %q", got)
	}
	if got := m.Get("Bcc"); len(got) != 2 {
		t.Errorf("Get(Bcc) = %q", got)
	}
	m.Remove("Bcc")
	m.Add("Date", "now\r\nInjected: yes")
	want := "To: a@x,\r\n  b@y\r\nSubject: hi\r\nDate: now  Injected: yes\r\n\r\nbody\r\n"
	if got := render(t, m); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// A body larger than memBody goes to an unlinked temporary file and comes
// back byte for byte.
func TestReadSpills(t *testing.T) {
	line := strings.Repeat("0123456789", 99) + "\n"
	in := "Subject: big\n\n" + strings.Repeat(line, 3*memBody/len(line))
	dir := t.TempDir()
	m, err := Read(strings.NewReader(in), ReadOptions{TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.body.f == nil {
		t.Fatal("the body did not spill to a file")
	}
	if ents, _ := readDir(dir); len(ents) != 0 {
		t.Errorf("the temporary file is still linked: %v", ents)
	}
	want := strings.ReplaceAll(in, "\n", "\r\n")
	if got := render(t, m); got != want {
		t.Errorf("spilled body differs (len %d, want %d)", len(got), len(want))
	}
}

// A body line over RFC 5322's 998 octets is broken as Postfix's SMTP
// client breaks it, with CRLF and a space, never inside a UTF-8
// character: smtp-bs refuses a line over 64 KiB for good, which made cron
// mail with a long line undeliverable (found by a red-team run).
func TestReadLongLine(t *testing.T) {
	for _, long := range []string{strings.Repeat("0123456789", 20<<10), strings.Repeat("é", 3000) + "x"} {
		m, err := Read(strings.NewReader("Subject: x\n\n"+long+"\nend\n"), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := render(t, m)
		hdr, body, _ := strings.Cut(got, "\r\n\r\n")
		lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
		if hdr != "Subject: x" || lines[len(lines)-1] != "end" || len(lines) < 3 {
			t.Fatalf("long line mangled (len %d)", len(got))
		}
		joined := lines[0]
		for i, l := range lines[:len(lines)-1] {
			if len(l) > 998 || len(l) < 990 && i < len(lines)-2 || !utf8.ValidString(l) {
				t.Fatalf("line %d has %d octets (valid UTF-8: %v)", i, len(l), utf8.ValidString(l))
			}
			if i > 0 {
				if l[0] != ' ' {
					t.Fatalf("line %d does not start with a space", i)
				}
				joined += l[1:]
			}
		}
		if joined != long {
			t.Errorf("the pieces do not make the line again")
		}
	}
}

func TestReadLimits(t *testing.T) {
	_, err := Read(strings.NewReader("Subject: x\n\n"+strings.Repeat("a\n", 100)), ReadOptions{MaxBytes: 50})
	var se *Error
	if !errors.As(err, &se) || se.Code != ExDataErr {
		t.Errorf("over MaxBytes: %v, want exit 65", err)
	}
	// A long line without a newline is bounded too.
	_, err = Read(strings.NewReader(strings.Repeat("a", 300<<10)), ReadOptions{MaxBytes: 100 << 10})
	if !errors.As(err, &se) || se.Code != ExDataErr {
		t.Errorf("long line over MaxBytes: %v, want exit 65", err)
	}
	_, err = Read(strings.NewReader(strings.Repeat("X-A: "+strings.Repeat("b", 1000)+"\n", MaxHeaderBytes/1000+1)), ReadOptions{})
	if !errors.As(err, &se) || se.Code != ExDataErr {
		t.Errorf("huge header: %v, want exit 65", err)
	}
	_, err = Read(iotest.ErrReader(errors.New("boom")), ReadOptions{})
	if !errors.As(err, &se) || se.Code != ExIOErr {
		t.Errorf("read error: %v, want exit 74", err)
	}
	// Exactly at the bound is fine.
	in := "Subject: x\n\nabc\n"
	if _, err := Read(strings.NewReader(in), ReadOptions{MaxBytes: int64(len(in))}); err != nil {
		t.Errorf("at MaxBytes: %v", err)
	}
}

// cleanCRLF reports whether every CR is followed by LF and every LF
// preceded by CR: what smtp-bs accepts.
func cleanCRLF(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 >= len(b) || b[i+1] != '\n') {
			return false
		}
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return false
		}
	}
	return len(b) == 0 || bytes.HasSuffix(b, []byte("\r\n"))
}

func FuzzRead(f *testing.F) {
	for _, s := range []string{"", "Subject: x\n\nbody\n", "a\rb\r\nc\n", ".\n", "From x\nA: b\n c\n\n.\n..\n", "To: root\n", "\r\r\n\n\r"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, ignoreDots bool) {
		m, err := Read(bytes.NewReader(in), ReadOptions{IgnoreDots: ignoreDots})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		m.WriteTo(&b)
		if bytes.IndexByte(b.Bytes(), 0) >= 0 {
			t.Fatalf("output holds NUL: %q", b.Bytes())
		}
		if !cleanCRLF(b.Bytes()) {
			t.Fatalf("output is not clean CRLF: %q", b.Bytes())
		}
		if int64(b.Len()) != m.Size() {
			t.Fatalf("Size %d, wrote %d", m.Size(), b.Len())
		}
		// One line of text (NULs aside, which are dropped) that is not an
		// mbox separator must come out as something.
		text := bytes.ReplaceAll(in, []byte{0}, nil)
		if ignoreDots && !bytes.ContainsAny(in, "\r\n") && len(text) > 0 && !bytes.HasPrefix(in, []byte("From ")) && b.Len() == 0 {
			t.Fatalf("lost the input %q", in)
		}
	})
}
