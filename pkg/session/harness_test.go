package session_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-bs/internal/testenv"
	"smtp-bs/pkg/config"
	"smtp-bs/pkg/maillog"
	"smtp-bs/pkg/session"
	"smtp-bs/pkg/spool"
)

// harness runs session.Server.Serve in this process, on real 127.0.0.1
// sockets, over a spool in a temporary directory.
type harness struct {
	t   testing.TB
	srv *session.Server
	sp  *spool.Spool
	log *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig is the configuration of the in-process tests: extra is TOML
// for the [smtp] table.
func testConfig(t testing.TB, dir, smtpExtra string) *config.Config {
	t.Helper()
	src := fmt.Sprintf("hostname = \"mx.test.example\"\nlog = \"none\"\n[spool]\ndir = %q\nmin_free_bytes = 0\n[smtp]\n%s\n[tcpwrap]\nenabled = false\n", dir, smtpExtra)
	cfg, err := config.Parse("test", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newHarness(t testing.TB, ops spool.Ops, smtpExtra string) *harness {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Create(dir, ops)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sp: sp, log: &lockedBuffer{}}
	h.srv = &session.Server{Config: testConfig(t, dir, smtpExtra), Spool: sp, Log: maillog.New("smtp-bs", h.log)}
	return h
}

// pair returns both ends of a fresh 127.0.0.1 TCP connection.
func pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return client, r.c
}

var loopback = session.Client{Addr: netip.MustParseAddr("127.0.0.1")}

// start serves one session for client on a fresh connection and returns
// the client's end; the test's cleanup waits for Serve to return.
func (h *harness) start(client session.Client) (net.Conn, <-chan error) {
	h.t.Helper()
	return h.startAfter(client, nil)
}

// startAfter is start, running before (if not nil) on the client's end
// before the server side begins.
func (h *harness) startAfter(client session.Client, before func(c net.Conn)) (net.Conn, <-chan error) {
	h.t.Helper()
	c, s := pair(h.t)
	if before != nil {
		before(c)
	}
	done := make(chan error, 1)
	go func() {
		err := h.srv.Serve(context.Background(), s, client)
		done <- err
		close(done)
	}()
	h.t.Cleanup(func() {
		c.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			h.t.Error("Serve did not return after the client closed")
		}
	})
	return c, done
}

// dial starts a session and reads the greeting.
func (h *harness) dial(client session.Client) *testenv.Dialogue {
	h.t.Helper()
	c, _ := h.start(client)
	d := &testenv.Dialogue{T: h.t, Conn: c, R: bufio.NewReader(c)}
	d.Expect(220)
	return d
}

// files lists what is in a spool subdirectory.
func (h *harness) files(dir string) []string {
	ents, err := os.ReadDir(filepath.Join(h.sp.Dir, dir))
	if err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// assertEmpty fails unless nothing is spooled and nothing half-written is left.
func (h *harness) assertEmpty(what string) {
	h.t.Helper()
	for _, d := range []string{"tmp", "data", "queue", "state"} {
		if f := h.files(d); len(f) != 0 {
			h.t.Errorf("%s: %s/ holds %v", what, d, f)
		}
	}
}

// queued reads every queued message, checking it is whole: the envelope
// parses and the data has the size it names.
func (h *harness) queued() map[string][]byte {
	h.t.Helper()
	out := map[string][]byte{}
	for _, id := range h.files("queue") {
		env, err := h.sp.ReadEnvelope(id)
		if err != nil {
			h.t.Fatalf("queued %s does not parse: %v", id, err)
		}
		f, err := h.sp.OpenData(env)
		if err != nil {
			h.t.Fatalf("queued %s: %v", id, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		out[id] = b
	}
	return out
}

// body is the message content without our Received header.
func body(b []byte) []byte {
	if !bytes.HasPrefix(b, []byte("Received: ")) {
		return b
	}
	i := bytes.Index(b, []byte("\r\n"))
	for i >= 0 && i+2 < len(b) && (b[i+2] == '\t' || b[i+2] == ' ') {
		i = i + 2 + bytes.Index(b[i+2:], []byte("\r\n"))
	}
	return b[i+2:]
}

func msg(subject string) string {
	return "From: a@client.example\r\nSubject: " + subject + "\r\n\r\nHello.\r\n"
}

// send runs a whole transaction and returns the final reply.
func send(d *testenv.Dialogue, content string) (int, string) {
	d.T.Helper()
	d.Cmd("MAIL FROM:<a@client.example>", 250)
	d.Cmd("RCPT TO:<b@remote.example>", 250)
	d.Cmd("DATA", 354)
	d.Send(content + ".\r\n")
	return d.Reply()
}

func hasCode(text string, code string) bool { return strings.HasPrefix(text, code) }
