package smtp

import (
	"bufio"
	"bytes"
	"io"
	"math/rand"
	"strings"
	"testing"
	"testing/iotest"
)

// readData reads r's DATA content with a dataReader over a bufio.Reader of
// size bufSize, in reads of chunk bytes, and returns it and what follows.
func readData(t *testing.T, r io.Reader, bufSize, chunk int) (data, rest string, err error) {
	br := bufio.NewReaderSize(r, bufSize)
	dr := &dataReader{r: br}
	var out bytes.Buffer
	p := make([]byte, chunk)
	for {
		n, e := dr.Read(p)
		out.Write(p[:n])
		if e != nil {
			if e != io.EOF {
				err = e
			}
			break
		}
	}
	after, _ := io.ReadAll(br)
	return out.String(), string(after), err
}

// The copy of whole runs (patch 11) reads exactly what reading byte by
// byte reads: the same content, the same end, whatever the buffering.
func TestDataReaderRuns(t *testing.T) {
	inputs := []string{
		"a\r\nb\r\n.\r\nQUIT\r\n", ".\r\n", "a\r\n..\r\n.\r\n", "a\n.\nb\r\n.\r\n", "a\r\n.\rx\r\n.\r\n",
		"\r\r\n.\r\nX", "x\ry\r\n.\r\n", strings.Repeat("long line ", 1000) + "\r\n.\r\nNOOP\r\n",
	}
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte("ab.\r\n")
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.Intn(60))
		for j := range b {
			b[j] = alphabet[rng.Intn(len(alphabet))]
		}
		inputs = append(inputs, string(b)+"\r\n.\r\nREST")
	}
	for _, in := range inputs {
		wantData, wantRest, wantErr := readData(t, iotest.OneByteReader(strings.NewReader(in)), 16, 1)
		for _, chunk := range []int{1, 3, 4096} {
			data, rest, err := readData(t, strings.NewReader(in), 16, chunk)
			if data != wantData || rest != wantRest || (err == nil) != (wantErr == nil) {
				t.Fatalf("%q in reads of %d: got %q, rest %q, err %v; byte by byte %q, rest %q, err %v",
					in, chunk, data, rest, err, wantData, wantRest, wantErr)
			}
		}
	}
}

// FuzzDataReaderRuns: for any stream, reading runs (patch 11) gives the
// content, the end and the rest that reading byte by byte gives.
func FuzzDataReaderRuns(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\nQUIT\r\n", "a\r\n.\rx\r\n.\r\n", "\r\r\n.\r\nX", "x\n.\n\r\n.\r\n"} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, in string, chunk uint8) {
		wantData, wantRest, wantErr := readData(t, iotest.OneByteReader(strings.NewReader(in)), 16, 1)
		data, rest, err := readData(t, strings.NewReader(in), 16, int(chunk)+1)
		if data != wantData || rest != wantRest || (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: got %q, rest %q, err %v; byte by byte %q, rest %q, err %v", in, data, rest, err, wantData, wantRest, wantErr)
		}
	})
}

// FuzzParseCmd: a verb parseCmd returns is ASCII letters, upper case, and
// no line holding CR or NUL is a command (patch 4).
func FuzzParseCmd(f *testing.F) {
	for _, s := range []string{"HELO a", "STARTTLS", "\u017ftarttls", "MAIL FROM:<a@b>", "X\rY", "", "helo  x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, _, err := parseCmd(line)
		if err != nil || cmd == "" {
			return
		}
		if strings.ContainsAny(strings.TrimRight(line, "\r\n"), "\r\x00") {
			t.Fatalf("%q: a command (%q) though it holds CR or NUL", line, cmd)
		}
		for i := 0; i < len(cmd); i++ {
			if cmd[i] < 'A' || cmd[i] > 'Z' {
				t.Fatalf("%q: verb %q", line, cmd)
			}
		}
	})
}
