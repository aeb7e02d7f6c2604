package mailauth

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRewrite: whatever the header holds, Rewrite keeps every byte that is
// not a removed field, adds ours once, and leaves no field with our
// authserv-id but ours.
func FuzzRewrite(f *testing.F) {
	f.Add("Received: x\r\nAuthentication-Results: mx.test; spf=pass\r\n\r\nbody\r\n")
	f.Add("Received: x\r\nAuthentication-Results: (c) mx.test\r\n\t; dkim=pass\r\nA: b\r\n\r\n")
	f.Add("no header at all")
	f.Fuzz(func(t *testing.T, in string) {
		const ours = "Authentication-Results: mx.test; none\r\n"
		var out bytes.Buffer
		n, err := Rewrite(&out, strings.NewReader(in), "mx.test", ours)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(out.String(), ours) < 1 {
			t.Fatalf("ours missing: %q", out.String())
		}
		if got, want := out.Len(), len(in)+len(ours); n == 0 && got != want {
			t.Fatalf("nothing removed, yet %d bytes out of %d+%d", got, len(in), len(ours))
		}
		_ = AuthservID(in)
		// The same as a Filter fed in pieces, as a message streams in, with
		// the first line written ahead of it (our Received).
		first, rest, _ := strings.Cut(in, "\n")
		if len(first) == len(in) || strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "\t") {
			// One line, or a rest that would continue the first line's
			// field: in a stream that field is not the Filter's to see.
			return
		}
		var streamed bytes.Buffer
		streamed.WriteString(first + "\n")
		fl := NewFilter(&streamed, "mx.test", ours, 0)
		for i := 0; i < len(rest); i += 7 {
			fl.Write([]byte(rest[i:min(i+7, len(rest))]))
		}
		if err := fl.Flush(); err != nil {
			t.Fatal(err)
		}
		// The first line stands for our Received: a field, never one to remove.
		ours1 := strings.HasPrefix(strings.ToLower(first), "authentication-results")
		if !ours1 && strings.TrimLeft(first, " \t") == first && strings.TrimRight(first, "\r") != "" && streamed.String() != out.String() {
			t.Fatalf("streamed:\n%q\nrewritten:\n%q", streamed.String(), out.String())
		}
	})
}
