package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The host name every handler sees: fully qualified (sendmail sleeps 60 s
// trying to qualify one without a dot), and in the private /etc/hosts.
const benchHost = "mx.bench.example"

// eximUser is Debian's exim user, added to the private /etc/passwd only.
const (
	eximUser = "Debian-exim"
	eximID   = 64990
)

// setupNamespace prepares the private namespaces the inner process runs
// in (see the package comment). run is bench/.cache/run.
func setupNamespace(run string, quickack bool) (*syslogSink, error) {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Sethostname([]byte(benchHost)); err != nil {
		return nil, fmt.Errorf("sethostname: %w", err)
	}
	if err := sh("ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if quickack {
		// Both local routes: 127.0.0.1 has its own, more specific one.
		for _, dst := range []string{"127.0.0.0/8", "127.0.0.1"} {
			if err := sh("ip", "route", "change", "local", dst, "dev", "lo", "table", "local",
				"proto", "kernel", "scope", "host", "src", "127.0.0.1", "quickack", "1"); err != nil {
				return nil, err
			}
		}
	}
	// Many short connections: a wide port range (this namespace's own).
	os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("10000 65000"), 0o644)

	etc := filepath.Join(run, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return nil, err
	}
	hosts := etcHosts()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(passwd, []byte("\n"+eximUser+":")) {
		passwd = append(passwd, fmt.Sprintf("%s:x:%d:%d:exim (bench):%s:/usr/sbin/nologin\n", eximUser, eximID, eximID, run)...)
		group = append(group, fmt.Sprintf("%s:x:%d:\n", eximUser, eximID)...)
	}
	files := map[string][]byte{
		"hosts":       []byte(hosts),
		"hostname":    []byte(benchHost + "\n"),
		"mailname":    []byte(benchHost + "\n"),
		"passwd":      passwd,
		"group":       group,
		"resolv.conf": []byte("# bench: no resolver in this network namespace\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"),
	}
	for name, content := range files {
		p := filepath.Join(etc, name)
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return nil, err
		}
		target := filepath.Join("/etc", name)
		if _, err := os.Stat(target); err != nil {
			continue // nothing to cover; never create files in the real /etc
		}
		if err := unix.Mount(p, target, "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("bind %s: %w", target, err)
		}
	}

	// A private /dev: the few device nodes the programs use, and /dev/log,
	// which this process reads, so every handler logs the way it would on
	// a real host and the benchmark can count the lines.
	dev := filepath.Join(run, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return nil, err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID, "mode=755"); err != nil {
		return nil, fmt.Errorf("tmpfs on %s: %w", dev, err)
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom"} {
		p := filepath.Join(dev, n)
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return nil, err
		}
		if err := unix.Mount("/dev/"+n, p, "", unix.MS_BIND, ""); err != nil {
			return nil, fmt.Errorf("bind /dev/%s: %w", n, err)
		}
	}
	for name, to := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		os.Symlink(to, filepath.Join(dev, name))
	}
	os.Mkdir(filepath.Join(dev, "shm"), 0o1777)
	if err := unix.Mount(dev, "/dev", "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, fmt.Errorf("bind %s on /dev: %w", dev, err)
	}
	return listenSyslog("/dev/log")
}

// etcHosts is Debian's layout: the host name on 127.0.1.1, not on
// 127.0.0.1. Were 127.0.0.1 named after this host, sendmail would take
// the smarthost [127.0.0.1] for itself and deliver around it.
func etcHosts() string {
	return fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s mx\n::1\tlocalhost ip6-localhost\n", benchHost)
}

func sh(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// syslogSink reads /dev/log and counts lines per program.
type syslogSink struct {
	conn *net.UnixConn
	mu   sync.Mutex
	tags []string // programs whose lines are counted, by the tag they log with
	n    map[string]int
	last map[string]string
}

func listenSyslog(path string) (*syslogSink, error) {
	os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	os.Chmod(path, 0o666)
	c.SetReadBuffer(4 << 20)
	s := &syslogSink{conn: c, tags: []string{"smtp-bs", "qrun", "sendmail", "sm-mta", "exim"}, n: map[string]int{}, last: map[string]string{}}
	go s.loop()
	return s, nil
}

// addTag counts the lines of one more program (an -ab binary's name).
func (s *syslogSink) addTag(tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.tags, tag) {
		s.tags = append(s.tags, tag)
	}
}

func (s *syslogSink) loop() {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		head := string(buf[:min(n, 200)])
		tag := "other"
		s.mu.Lock()
		for _, t := range s.tags {
			if strings.Contains(head, " "+t+"[") || strings.Contains(head, " "+t+":") {
				tag = t
				break
			}
		}
		s.n[tag]++
		s.last[tag] = string(buf[:min(n, 400)])
		s.mu.Unlock()
	}
}

// take returns the counts so far and starts again from zero.
func (s *syslogSink) take() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.n
	s.n = map[string]int{}
	return out
}

func (s *syslogSink) lastLine(tag string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[tag]
}
