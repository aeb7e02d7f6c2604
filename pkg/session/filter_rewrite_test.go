package session

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// feedAll runs input through the filter, pretending go-smtp answered every
// DATA with code dataCode.
func feedAll(t *testing.T, input string, dataCode int) string {
	t.Helper()
	f := newFilter(iotest.OneByteReader(strings.NewReader(input)), "mx.example", func() int { return dataCode })
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestFilterRewritesOnlyCommands(t *testing.T) {
	in := "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<Postmaster>\r\nrcpt to:<postmaster> NOTIFY=NEVER\r\n" +
		"RCPT TO:<@x.example,@y.example:u@z.example>\r\nDATA\r\n" +
		"RCPT TO:<Postmaster>\r\n.stuffed\r\n\n.\r\nRCPT TO:<@a:b@c>\r\n.\r\nRCPT TO:<postmaster>\r\nQUIT\r\n"
	got := feedAll(t, in, 354)
	want := "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<Postmaster@mx.example>\r\nRCPT TO:<postmaster@mx.example> NOTIFY=NEVER\r\n" +
		"RCPT TO:<" + sourceRouteMarker + ">\r\nDATA\r\n" +
		"RCPT TO:<Postmaster>\r\n.stuffed\r\n\n.\r\nRCPT TO:<@a:b@c>\r\n.\r\nRCPT TO:<postmaster@mx.example>\r\nQUIT\r\n"
	// "\n.\r\n" is not the end of data (bare LF), so the lines after it are
	// still content and must pass untouched.
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestFilterRefusedDataStaysInCommandMode(t *testing.T) {
	got := feedAll(t, "DATA\r\nRCPT TO:<postmaster>\r\n", 503)
	if !strings.Contains(got, "postmaster@mx.example") {
		t.Errorf("after a refused DATA the next line is a command: %q", got)
	}
}

func TestFilterBDATCountsBytes(t *testing.T) {
	chunk := "RCPT TO:<postmaster>\r\n"
	got := feedAll(t, "BDAT 22\r\n"+chunk+"RCPT TO:<postmaster>\r\n", 0)
	if !strings.HasPrefix(got, "BDAT 22\r\n"+chunk) || !strings.HasSuffix(got, "<postmaster@mx.example>\r\n") {
		t.Errorf("BDAT chunk rewritten or command after it not: %q", got)
	}
}

func TestFilterLongLine(t *testing.T) {
	f := newFilter(strings.NewReader(strings.Repeat("x", 5000)+"\r\n"), "h", func() int { return 0 })
	if _, err := io.ReadAll(f); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("overlong command line: err = %v", err)
	}
	// A long line of content is fine.
	in := "DATA\r\n" + strings.Repeat("y", 100000) + "\r\n.\r\n"
	if got := feedAll(t, in, 354); got != in {
		t.Error("long content line altered")
	}
}

func TestBodyCheck(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"Subject: x\r\n\r\nbody\r\n", nil},
		{"Subject: x\r\n\r\nbare\nlf\r\n", errBareEOL},
		{"Subject: x\r\n\r\nbare\rcr\r\n", errBareEOL},
		{"Subject: x\r\n\r\n\n.\n", errBareEOL},
		{"Subject: x\r\n\r\nnul\x00\r\n", errNUL},
		{"Subject: x\r\n\r\nends in cr\r", errBareEOL},
		{strings.Repeat("Received: x\r\n", 99) + "\r\nbody\r\n", nil},
		{strings.Repeat("Received: x\r\n", 100) + "\r\nbody\r\n", errLoop},
		{"Subject: x\r\n\r\n" + strings.Repeat("Received: x\r\n", 200), nil}, // in the body: not headers
	}
	for _, c := range cases {
		var buf bytes.Buffer
		chk := newBodyCheck(&buf, 100)
		_, err := io.Copy(chk, iotest.HalfReader(strings.NewReader(c.in)))
		if err == nil {
			if fe := chk.finish(); fe != nil {
				err = fe
			}
		}
		if c.want == nil && err != nil || c.want != nil && err != error(c.want) {
			t.Errorf("%.40q: err %v, want %v", c.in, err, c.want)
		}
		if c.want == nil && buf.String() != c.in {
			t.Errorf("%.40q: content altered", c.in)
		}
	}
}
