package crash

import (
	"bytes"
	"io"
	"log"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is the smarthost: a go-smtp server that records every message it
// accepts, and can kill the qrun talking to it at a chosen event of the
// dialogue (the connection, MAIL, each RCPT, the end of DATA before its
// reply), which is how the tests stop qrun "after some RCPTs".
type sink struct {
	addr string

	mu   sync.Mutex
	got  map[string]map[string]int // subject -> rcpt -> deliveries
	data map[string][]byte         // subject -> content as delivered
	// bounces counts DSNs by the subject of the message they report on.
	bounces map[string]int

	events   atomic.Int64 // dialogue events so far
	killAt   atomic.Int64 // kill the victim at this event (0: never)
	victim   atomic.Int64 // pid of the qrun to kill
	killed   atomic.Bool
	refusePf string // RCPTs with this prefix get 550
}

var subjectRe = regexp.MustCompile(`(?m)^Subject: (\S+)\r$`)

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{got: map[string]map[string]int{}, data: map[string][]byte{}, bounces: map[string]int{}, refusePf: "refuse"}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		if err := s.event(); err != nil {
			return nil, err
		}
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "sink.test"
	srv.ErrorLog = log.New(io.Discard, "", 0) // qrun dies mid-dialogue on purpose
	srv.MaxLineLength = 0
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

// event counts one dialogue event and kills the victim if it is the one.
func (s *sink) event() error {
	n := s.events.Add(1)
	if k := s.killAt.Load(); k == 0 || n != k {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.victim.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if pid := s.victim.Load(); pid > 0 {
		s.killed.Store(true)
		syscall.Kill(int(pid), syscall.SIGKILL)
	}
	return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "killed"}
}

// arm makes the sink kill pid at event k of what follows (0: never).
func (s *sink) arm(k int64) {
	s.events.Store(0)
	s.killed.Store(false)
	s.victim.Store(0)
	s.killAt.Store(k)
}

func (s *sink) delivered(subject, rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[subject][rcpt]
}

func (s *sink) content(subject string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[subject]
}

func (s *sink) bounced(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bounces[subject]
}

type sinkSession struct {
	s     *sink
	from  string
	rcpts []string
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	ss.from, ss.rcpts = from, nil
	return ss.s.event()
}

func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.event(); err != nil {
		return err
	}
	if len(to) >= len(ss.s.refusePf) && to[:len(ss.s.refusePf)] == ss.s.refusePf {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.event(); err != nil {
		return err
	}
	m := subjectRe.FindSubmatch(b)
	if m == nil {
		return &smtp.SMTPError{Code: 554, Message: "no subject"}
	}
	subject := string(m[1])
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.from == "" && bytes.Contains(b, []byte("multipart/report")) {
		ss.s.bounces[subject]++
		return nil
	}
	if ss.s.got[subject] == nil {
		ss.s.got[subject] = map[string]int{}
	}
	for _, r := range ss.rcpts {
		ss.s.got[subject][r]++
	}
	ss.s.data[subject] = b
	return nil
}

func (ss *sinkSession) Reset()        { ss.from, ss.rcpts = "", nil }
func (ss *sinkSession) Logout() error { return nil }
