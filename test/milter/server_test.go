package milter

import (
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// seen is what a test milter was told, for the tests to check.
type seen struct {
	mu      sync.Mutex
	connect []string // client addresses
	helo    []string
	headers [][]string // per message, the field names in order
	values  map[string]string
}

func (s *seen) add(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

func (s *seen) snapshot() (connect, helo []string, headers [][]string, values map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := map[string]string{}
	for k, x := range s.values {
		v[k] = x
	}
	return append([]string(nil), s.connect...), append([]string(nil), s.helo...), append([][]string(nil), s.headers...), v
}

// scripted is a go-milter server whose answers depend on what it is sent,
// so that one server covers every verdict and every modification:
//   - connect from 127.0.0.5: rejected (every MAIL then refused);
//   - MAIL FROM spammer@...: 553 5.7.1 with its own text;
//   - RCPT reject-me@: 550 5.7.1 with its own text; tempfail-me@: tempfail;
//     discard-me@: the whole message discarded;
//   - the Subject decides the end of message: "modify" makes every change
//     there is, "reject" 554 5.7.0, "tempfail", "discard", "quarantine",
//     "hang" sleeps past the timeout.
type scripted struct {
	gomilter.NoOpMilter
	seen    *seen
	subject string
	names   []string
}

func (m *scripted) Connect(host, family string, port uint16, addr net.IP, _ *gomilter.Modifier) (gomilter.Response, error) {
	m.seen.add(func() { m.seen.connect = append(m.seen.connect, addr.String()) })
	if addr.Equal(net.ParseIP("127.0.0.5")) {
		return gomilter.NewResponseStr('y', "554 5.7.1 Your network is not welcome here"), nil
	}
	return gomilter.RespContinue, nil
}

func (m *scripted) Helo(name string, _ *gomilter.Modifier) (gomilter.Response, error) {
	m.seen.add(func() { m.seen.helo = append(m.seen.helo, name) })
	return gomilter.RespContinue, nil
}

func (m *scripted) MailFrom(from string, _ *gomilter.Modifier) (gomilter.Response, error) {
	m.subject, m.names = "", nil
	if strings.HasPrefix(from, "spammer@") {
		return gomilter.NewResponseStr('y', "553 5.7.1 Sender blocked by the test milter"), nil
	}
	return gomilter.RespContinue, nil
}

func (m *scripted) RcptTo(rcpt string, _ *gomilter.Modifier) (gomilter.Response, error) {
	switch local, _, _ := strings.Cut(rcpt, "@"); local {
	case "reject-me":
		return gomilter.NewResponseStr('y', "550 5.7.1 No mail for reject-me, says the milter"), nil
	case "tempfail-me":
		return gomilter.RespTempFail, nil
	case "discard-me":
		return gomilter.RespDiscard, nil
	}
	return gomilter.RespContinue, nil
}

func (m *scripted) Header(name, value string, _ *gomilter.Modifier) (gomilter.Response, error) {
	m.names = append(m.names, name)
	m.seen.add(func() {
		if m.seen.values == nil {
			m.seen.values = map[string]string{}
		}
		m.seen.values[name] = value
	})
	if name == "Subject" {
		m.subject = strings.TrimSpace(value)
	}
	return gomilter.RespContinue, nil
}

func (m *scripted) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	names := append([]string(nil), m.names...)
	m.seen.add(func() { m.seen.headers = append(m.seen.headers, names) })
	return gomilter.RespContinue, nil
}

func (m *scripted) Body(mod *gomilter.Modifier) (gomilter.Response, error) {
	switch m.subject {
	case "modify":
		// Every change the protocol has, and two it must not be allowed:
		// our Received header stays as it is, and on top.
		mod.AddHeader("X-Milter", "added at the end")
		mod.ChangeHeader(1, "Subject", "changed by the milter")
		mod.ChangeHeader(1, "X-Remove-Me", "")
		mod.InsertHeader(0, "X-Inserted", "below our Received header")
		mod.ChangeHeader(1, "Received", "forged")
		mod.ChangeFrom("<new-sender@client.example>")
		mod.AddRecipient("added@remote.example") // go-milter adds the brackets
		mod.DeleteRecipient("removed@remote.example")
		mod.ReplaceBody([]byte("Replaced body.\r\n.A line with a leading dot.\r\n"))
		return gomilter.RespAccept, nil
	case "reject":
		return gomilter.NewResponseStr('y', "554 5.7.0 Your message looks like spam to the milter"), nil
	case "tempfail":
		return gomilter.RespTempFail, nil
	case "discard":
		return gomilter.RespDiscard, nil
	case "quarantine":
		mod.Quarantine("looks odd to the test milter")
		return gomilter.RespAccept, nil
	case "hang":
		time.Sleep(3 * time.Second)
	}
	return gomilter.RespAccept, nil
}

// startMilter runs a scripted go-milter server on network ("tcp" on
// 127.0.0.1 or "unix" in a directory every user may enter) and returns
// its socket in config form.
func startMilter(t *testing.T, network string) (string, *seen) {
	t.Helper()
	var ln net.Listener
	var err error
	var socket string
	if network == "unix" {
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		p := filepath.Join(dir, "milter.sock")
		ln, err = net.Listen("unix", p)
		if err == nil {
			os.Chmod(p, 0o666)
		}
		socket = "unix:" + p
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			socket = "inet:" + ln.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	s := &seen{}
	srv := &gomilter.Server{
		NewMilter: func() gomilter.Milter { return &scripted{seen: s} },
		Actions: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptChangeBody | gomilter.OptAddRcpt |
			gomilter.OptRemoveRcpt | gomilter.OptQuarantine | gomilter.OptChangeFrom,
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return socket, s
}
