package checks

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"smtp-bs/internal/dnstest"
	"smtp-bs/internal/testenv"
)

// BenchmarkConnectionCPU is what one connection costs smtp-bs in CPU
// (user + system, from the process's own rusage) with the DNS checks off
// (today's cost) and on, against a DNS server on 127.0.0.1: a real
// smtp-bs process per connection, started as tcpserver starts it (the
// socket on fds 0 and 1), from 127.0.0.2 (not a relay client, so every
// check applies), one 2 KB message, QUIT. Reported as cpu-µs/msg; ns/op
// is the wall time of the whole connection, the DNS server's answers
// included.
//
//	go test -run XXX -bench ConnectionCPU ./test/checks
func BenchmarkConnectionCPU(b *testing.B) {
	dns := dnstest.Start(b,
		`sender.test. TXT "v=spf1 include:_spf.sender.test ~all"`,
		`_spf.sender.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.sender.test. TXT "v=DMARC1; p=none"`,
	)
	for _, tc := range []struct{ name, checks string }{
		{"off", ""},
		{"dnsbl+spf", `[checks.dnsbl]
zones = ["bl1.test*2", "bl2.test=127.0.0.[2..11]", "wl.test=127.0.[0..255].[1..3]*-5"]
[checks.spf]
enabled = true`},
		{"dnsbl", `[checks.dnsbl]
zones = ["bl1.test*2", "bl2.test=127.0.0.[2..11]", "wl.test=127.0.[0..255].[1..3]*-5"]`},
		{"spf", `[checks.spf]
enabled = true`},
		{"dnsbl+spf+dmarc", `[checks.dnsbl]
zones = ["bl1.test*2", "bl2.test=127.0.0.[2..11]", "wl.test=127.0.[0..255].[1..3]*-5"]
[checks.spf]
enabled = true
[checks.dmarc]
enabled = true`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := testenv.New(b)
			e.Extra["smtp"] = "relay_networks = []\nlocal_domains = [\"mx.test.example\"]"
			e.Extra["checks"] = fmt.Sprintf("resolver = %q\n%s", dns.Addr, tc.checks)
			e.WriteConfig()
			bin := testenv.Bin(b, "smtp-bs")
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			body := benchMessage(2 << 10)
			var cpu time.Duration
			n := 0
			for b.Loop() {
				cpu += oneConnection(b, bin, e.CfgFile, ln, body)
				n++
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
			if got := len(e.Queued()); got != n {
				b.Fatalf("%d connections, %d messages queued:\n%s", n, got, e.Log())
			}
		})
	}
}

// oneConnection runs one smtp-bs on a fresh connection from 127.0.0.2 and
// returns the CPU time the process used.
func oneConnection(b *testing.B, bin, cfg string, ln net.Listener, body string) time.Duration {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	f, err := s.(*net.TCPConn).File()
	s.Close()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Stdin, cmd.Stdout = f, f
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	dl := &testenv.Dialogue{T: b, Conn: c, R: bufio.NewReader(c)}
	dl.Expect(220)
	dl.Cmd("EHLO client.test", 250)
	dl.Cmd("MAIL FROM:<a@sender.test>", 250)
	dl.Cmd("RCPT TO:<b@mx.test.example>", 250)
	dl.Cmd("DATA", 354)
	dl.Send(body)
	dl.Cmd(".", 250)
	dl.Cmd("QUIT", 221)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("smtp-bs: %v", err)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

func benchMessage(size int) string {
	m := "From: a@sender.test\r\nTo: b@mx.test.example\r\nSubject: benchmark\r\nMessage-ID: <bench@sender.test>\r\n\r\n"
	for len(m) < size {
		m += "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
	}
	return m
}
