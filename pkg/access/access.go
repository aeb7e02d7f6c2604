// Package access is smtp-bs's hosts.allow/hosts.deny gate: it asks
// pkg/tcpwrap for libwrap's verdict before go-smtp sees the connection,
// and speaks to a refused client the way RFC 5321 3.1 says: a 554
// greeting, then 503 to everything but QUIT, then a disconnect.
package access

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"smtp-bs/pkg/config"
	"smtp-bs/pkg/tcpwrap"
)

// Check returns libwrap's verdict for a network client of daemon.
func Check(ctx context.Context, cfg *config.Config, daemon string, peer net.Addr, local net.Addr, resolver tcpwrap.Resolver) (tcpwrap.Verdict, error) {
	c := tcpwrap.Client{}
	if ta, ok := peer.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		c.Addr, c.Port = ap.Addr().Unmap(), ap.Port()
	}
	if la, ok := local.(*net.TCPAddr); ok {
		ap := la.AddrPort()
		c.Local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return tcpwrap.Check(ctx, daemon, c, options(cfg, resolver))
}

func options(cfg *config.Config, resolver tcpwrap.Resolver) tcpwrap.Options {
	return tcpwrap.Options{AllowFile: cfg.TCPWrap.AllowFile, DenyFile: cfg.TCPWrap.DenyFile, Resolver: resolver}
}

// Daemon is the name rules are matched against: the configured one, else
// the program's name, as tcpd uses.
func Daemon(cfg *config.Config, prog string) string {
	if cfg.TCPWrap.Daemon != "" {
		return cfg.TCPWrap.Daemon
	}
	return prog
}

// RelayGranted reports whether the deciding rule grants relaying with
// setenv RELAYCLIENT, as qmail users write it.
func RelayGranted(v tcpwrap.Verdict) bool {
	_, ok := v.Env["RELAYCLIENT"]
	return ok
}

// Refuse speaks to a refused client for at most wait: 554, then 503 to
// every command but QUIT (221), then closes.
func Refuse(conn net.Conn, hostname string, wait time.Duration) {
	RefuseWith(conn, hostname, "Access denied (hosts.allow/hosts.deny)", wait)
}

// RefuseWith is Refuse with the greeting's text (one line, ASCII) given.
func RefuseWith(conn net.Conn, hostname, text string, wait time.Duration) {
	defer conn.Close()
	deadline := time.Now().Add(wait)
	conn.SetDeadline(deadline)
	fmt.Fprintf(conn, "554 5.7.1 %s %s\r\n", hostname, text)
	r := bufio.NewReaderSize(io.LimitReader(conn, 64<<10), 1024)
	for i := 0; i < 20; i++ {
		line, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		if strings.EqualFold(strings.TrimSpace(string(line)), "QUIT") {
			fmt.Fprintf(conn, "221 2.0.0 %s Bye\r\n", hostname)
			return
		}
		if err == nil {
			fmt.Fprintf(conn, "503 5.7.1 Access denied, only QUIT is accepted\r\n")
		}
	}
}

// Explain answers "would this client get in, and which line decides?"
// without a connection, like tcpdmatch. name, when given, is the host name
// the client is assumed to have (its reverse and forward lookups agree on
// it); without it the name is looked up as for a real client.
func Explain(w io.Writer, cfg *config.Config, daemon, addr, name string) (bool, error) {
	ip, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	if err != nil {
		return false, fmt.Errorf("%q is not an IP address", addr)
	}
	ip = ip.Unmap()
	var res tcpwrap.Resolver
	if name != "" {
		res = staticResolver{addr: ip.String(), name: strings.TrimSuffix(name, ".")}
	}
	v, err := tcpwrap.Check(context.Background(), daemon, tcpwrap.Client{Addr: ip}, options(cfg, res))
	if err != nil {
		return false, err
	}
	verdict := "denied"
	if v.Allow {
		verdict = "allowed"
	}
	fmt.Fprintf(w, "daemon:  %s\nclient:  %s", daemon, ip)
	if name != "" {
		fmt.Fprintf(w, " (%s)", name)
	}
	fmt.Fprintf(w, "\nverdict: %s\n", verdict)
	if v.File != "" {
		fmt.Fprintf(w, "rule:    %s:%d\n", v.File, v.Line)
	} else {
		fmt.Fprintf(w, "rule:    none matched (the default is to allow)\n")
	}
	if v.Reason != "" {
		fmt.Fprintf(w, "reason:  %s\n", v.Reason)
	}
	for k, val := range v.Env {
		fmt.Fprintf(w, "setenv:  %s=%s\n", k, val)
	}
	if RelayGranted(v) {
		fmt.Fprintln(w, "relay:   granted (RELAYCLIENT)")
	}
	if !cfg.TCPWrap.Enabled {
		fmt.Fprintln(w, "note:    [tcpwrap] enabled = false: smtp-bs does not apply this check now")
	}
	if cfg.Proxy.IsTrusted(ip) {
		fmt.Fprintln(w, "note:    a trusted balancer ([proxy] trusted): its connections are judged by the client address in their PROXY header, never by this one")
	}
	// The whole files, not only the rules read on the way to this verdict.
	Lint(w, cfg)
	return v.Allow, nil
}

// staticResolver answers as if addr and name pointed at each other.
type staticResolver struct{ addr, name string }

func (s staticResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if addr == s.addr {
		return []string{s.name + "."}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

func (s staticResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if strings.EqualFold(strings.TrimSuffix(host, "."), s.name) {
		return []string{s.addr}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (s staticResolver) LookupCNAME(_ context.Context, host string) (string, error) {
	return strings.TrimSuffix(host, ".") + ".", nil
}

// Lint writes the malformed rules of the allow and deny files, one per
// line as FILE:LINE: problem (like tcpdchk), and returns how many.
func Lint(w io.Writer, cfg *config.Config) (int, error) {
	n := 0
	for _, p := range []string{cfg.TCPWrap.AllowFile, cfg.TCPWrap.DenyFile} {
		probs, err := tcpwrap.Lint(p)
		if err != nil {
			return n, fmt.Errorf("%s: %w", p, err)
		}
		for _, pr := range probs {
			fmt.Fprintf(w, "warning: %s\n", pr)
			n++
		}
	}
	return n, nil
}
