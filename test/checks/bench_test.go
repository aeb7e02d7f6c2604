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
// check applies), one 2 KB message, QUIT. Each iteration runs one
// connection of every setup in turn, so that a change in the machine's
// load falls on all of them alike; each setup's CPU per message is a
// metric (cpu-µs/<setup>), and the added cost of each over "off" too
// (+cpu-µs/<setup>). ns/op is the wall time of one round.
//
//	go test -run XXX -bench ConnectionCPU -benchtime 300x ./test/checks
func BenchmarkConnectionCPU(b *testing.B) {
	dns := dnstest.Start(b,
		`sender.test. TXT "v=spf1 include:_spf.sender.test ~all"`,
		`_spf.sender.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"`,
		`_dmarc.sender.test. TXT "v=DMARC1; p=none"`,
	)
	const zones = `[checks.dnsbl]
zones = ["bl1.test*2", "bl2.test=127.0.0.[2..11]", "wl.test=127.0.[0..255].[1..3]*-5"]
`
	const spf = "[checks.spf]\nenabled = true\n"
	setups := []struct{ name, checks string }{
		{"off", ""},
		{"dnsbl", zones},
		{"spf", spf},
		{"dnsbl+spf", zones + spf},
		{"dnsbl+spf+dmarc", zones + spf + "[checks.dmarc]\nenabled = true\n"},
	}
	envs := make([]*testenv.Env, len(setups))
	for i, su := range setups {
		e := testenv.New(b)
		e.Extra["smtp"] = "relay_networks = []\nlocal_domains = [\"mx.test.example\"]"
		e.Extra["checks"] = fmt.Sprintf("resolver = %q\n%s", dns.Addr, su.checks)
		e.WriteConfig()
		envs[i] = e
	}
	bin := testenv.Bin(b, "smtp-bs")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	body := benchMessage(2 << 10)
	cpu := make([]time.Duration, len(setups))
	n := 0
	for b.Loop() {
		for i := range setups {
			cpu[i] += oneConnection(b, bin, envs[i].CfgFile, ln, body)
		}
		n++
	}
	for i, su := range setups {
		b.ReportMetric(float64(cpu[i].Microseconds())/float64(n), "cpu-µs/"+su.name)
		if i > 0 {
			b.ReportMetric(float64((cpu[i]-cpu[0]).Microseconds())/float64(n), "+cpu-µs/"+su.name)
		}
		if got := len(envs[i].Queued()); got != n {
			b.Fatalf("%s: %d connections, %d messages queued:\n%s", su.name, n, got, envs[i].Log())
		}
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
