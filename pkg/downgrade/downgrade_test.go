package downgrade

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"testing"
)

func read(t *testing.T, msg []byte) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("converted message does not parse: %v\n%s", err, msg)
	}
	return m
}

func TestPlainTextWithoutMIME(t *testing.T) {
	in := []byte("From: a@example.org\r\nSubject: Grüße\r\n\r\nZoë says hi.\r\nA line.\r\n")
	out, err := Convert(in)
	if err != nil {
		t.Fatal(err)
	}
	if has8bit(out) {
		t.Fatalf("8-bit bytes left:\n%s", out)
	}
	m := read(t, out)
	if subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); subj != "Grüße" {
		t.Errorf("Subject %q", subj)
	}
	if m.Header.Get("MIME-Version") != "1.0" || m.Header.Get("Content-Transfer-Encoding") != "quoted-printable" ||
		m.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("header %v", m.Header)
	}
	b, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
	if string(b) != "Zoë says hi.\r\nA line.\r\n" {
		t.Errorf("body decodes to %q", b)
	}
}

func TestMultipart(t *testing.T) {
	bin := []byte{0xff, 0x00, 0x80, 'a', '\r', '\n'}
	in := "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nZoë\r\n--b1\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + string(bin) + "\r\n--b1\r\n" +
		"Content-Type: text/plain\r\n\r\nplain ascii\r\n--b1--\r\nepilogue\r\n"
	out, err := Convert([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if has8bit(out) {
		t.Fatalf("8-bit bytes left:\n%s", out)
	}
	m := read(t, out)
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	mr := multipart.NewReader(m.Body, params["boundary"])
	var got []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p)
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			b, _ = io.ReadAll(base64Reader(b))
		}
		got = append(got, string(b))
	}
	want := []string{"Zoë", string(bin), "plain ascii"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("parts %q, want %q", got, want)
	}
	if !bytes.Contains(out, []byte("preamble\r\n--b1\r\n")) || !bytes.HasSuffix(out, []byte("--b1--\r\nepilogue\r\n")) {
		t.Errorf("preamble or epilogue changed:\n%s", out)
	}
}

func TestWhatCannotBeConverted(t *testing.T) {
	for name, in := range map[string]string{
		"UTF-8 in From":      "From: Zoë <z@example.org>\r\n\r\nhi\r\n",
		"8 bits in message/": "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nZoë\r\n",
		"8 bits in base64":   "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\nZoë\r\n",
		"no close delimiter": "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nZoë\r\n",
	} {
		if _, err := Convert([]byte(in)); !errors.Is(err, ErrCannot) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestScan(t *testing.T) {
	for in, want := range map[string]Needs{
		"Subject: x\r\n\r\nhi\r\n":                       {},
		"Subject: x\r\n\r\nZoë\r\n":                      {EightBit: true},
		"Subject: Zoë\r\n\r\nhi\r\n":                     {EightBit: true, UTF8Headers: true},
		"DKIM-Signature: v=1; d=x\r\nSubject: x\r\n\r\n": {DKIM: true},
	} {
		if got := Scan([]byte(in)); got != want {
			t.Errorf("Scan(%q) = %+v, want %+v", in, got, want)
		}
	}
}

// FuzzConvert: never a panic, and what converts has no 8-bit byte left.
func FuzzConvert(f *testing.F) {
	f.Add([]byte("Subject: Grüße\r\n\r\nZoë\r\n"))
	f.Add([]byte("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nZoë\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Convert(in)
		if err == nil && has8bit(out) {
			t.Fatalf("8-bit bytes left in %q", out)
		}
	})
}

func base64Reader(b []byte) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.ReplaceAll(b, []byte("\r\n"), nil)))
}
