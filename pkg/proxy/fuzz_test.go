package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzRead feeds arbitrary bytes before the greeting to Read, as a trusted
// balancer (or something on its network) could: it must never panic, and
// when it accepts a header, what it hands on is exactly the input after
// the header (no byte lost, none invented), and a header that is not a
// health check names a client. The seeds (testdata/fuzz/FuzzRead) are v1
// and v2 headers of each kind, with and without pipelined commands, and
// SMTP where a header belongs.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		srv, cli := net.Pipe()
		defer srv.Close()
		go func() {
			cli.Write(in)
			cli.Close()
		}()
		c, h, err := Read(srv, 2*time.Second)
		if err != nil {
			return
		}
		if !h.Health && !h.Client.Addr().IsValid() {
			t.Fatalf("header without a client: %+v", h)
		}
		rest, _ := io.ReadAll(c)
		if !bytes.HasSuffix(in, rest) || len(rest) == len(in) {
			t.Fatalf("after the header got %q, not a proper suffix of the input %q", rest, in)
		}
	})
}
