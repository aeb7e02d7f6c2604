package milter

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse: any content (as the session spools it) splits into fields
// and a body without panic, the body is a suffix of the content, and a
// content whose header ends at an empty line is written back unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		ours + "Subject: x\r\n\r\nbody\r\n",
		ours + "Subject: x\r\n\tfolded\r\nTo:  a@b\r\n\r\n",
		ours + "no header line\r\n",
		ours + "X:\r\n",
		" leading\r\n\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := parse(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			t.Fatal(err)
		}
		if m.bodyOff < 0 || m.bodyOff > int64(len(in)) || m.bodyLen != int64(len(in))-m.bodyOff {
			t.Fatalf("body at %d+%d of %d", m.bodyOff, m.bodyLen, len(in))
		}
		var out bytes.Buffer
		if _, err := m.writeTo(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(out.Bytes(), in[m.bodyOff:]) {
			t.Fatalf("body not kept")
		}
		head := string(in[:m.bodyOff])
		if strings.HasSuffix(head, "\r\n\r\n") && !strings.Contains(head[:len(head)-2], "\r\n\r\n") && len(m.fields) > 0 &&
			!strings.ContainsAny(strings.ReplaceAll(head, "\r\n", ""), "\r\n") && !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("rewritten:\n%q\nwant\n%q", out.Bytes(), in)
		}
	})
}
