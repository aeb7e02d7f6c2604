package e2e

import (
	"fmt"
	"net/smtp"
	"strings"
	"sync"
	"testing"

	"smtp-bs/internal/testenv"
)

// TestDrainIntoPostfixSmtpSink delivers to a peer that is not ours:
// Postfix's smtp-sink.
func TestDrainIntoPostfixSmtpSink(t *testing.T) {
	sink := testenv.StartSmtpSink(t)
	e := testenv.New(t)
	e.Extra["delivery"] = fmt.Sprintf("smarthost = %q\nsmarthost_tls = \"opportunistic\"\nmax_per_destination = 4", "["+sink.Addr[:9]+"]"+sink.Addr[9:])
	e.WriteConfig()
	addr := e.SocketActivate()
	const n = 60
	var wg sync.WaitGroup
	sem := make(chan struct{}, 6)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			msg := message(fmt.Sprintf("sink-%03d", i), "Body.\r\n")
			if err := smtp.SendMail(addr, nil, "s@client.example", []string{fmt.Sprintf("r%d@d%d.example", i, i%5)}, msg); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	if out, code := e.Qrun("-once"); code != 0 {
		var qlog []string
		for _, l := range strings.Split(e.Log(), "\n") {
			if strings.Contains(l, "qrun[") && !strings.Contains(l, " sent id=") {
				qlog = append(qlog, l)
			}
		}
		t.Fatalf("qrun -once: %d %s\n%s", code, out, strings.Join(qlog, "\n"))
	}
	seen := map[string]int{}
	for _, s := range sink.Subjects() {
		seen[s]++
	}
	if len(seen) != n {
		t.Errorf("smtp-sink got %d distinct messages, want %d", len(seen), n)
	}
	for s, c := range seen {
		if c != 1 {
			t.Errorf("%s arrived %d times", s, c)
		}
	}
	if q := len(e.Queued()); q != 0 {
		t.Errorf("%d still queued", q)
	}
}
