package delivery

import (
	"context"
	"strings"
	"sync"
	"testing"

	"smtp-bs/pkg/spool"
)

// A next hop without 8BITMIME gets 8-bit content converted to 7 bit (RFC
// 6152), and one without SMTPUTF8 a UTF-8 header section only where that
// can be converted (Subject); what cannot be is bounced at once, never
// sent raw.
func TestEightBitAndUTF8Onward(t *testing.T) {
	cases := []struct {
		name, exts, msg string
		want            spool.Status
		inReply         string
		sent            string // in what the server got
	}{
		{"8-bit body, no 8BITMIME", "HELP", "Subject: x\r\n\r\nZoë\r\n", spool.Sent, "converted to 7 bit", "Zo=C3=AB"},
		{"DKIM-signed, no 8BITMIME", "HELP", "DKIM-Signature: v=1; d=example.org\r\nSubject: x\r\n\r\nZoë\r\n", spool.Sent,
			"DKIM signature no longer verifies", "Zo=C3=AB"},
		{"UTF-8 Subject, no SMTPUTF8", "8BITMIME", "Subject: Grüße\r\n\r\nhi\r\n", spool.Sent, "offers no SMTPUTF8", "=?utf-8?q?Gr=C3=BC=C3=9Fe?="},
		{"UTF-8 From, no SMTPUTF8", "8BITMIME", "From: Zoë <z@example.org>\r\n\r\nhi\r\n", spool.Failed, "5.6.7", ""},
		{"8 bits in message/rfc822, no 8BITMIME", "HELP", "MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nZoë\r\n",
			spool.Failed, "5.6.3", ""},
		{"8-bit body, 8BITMIME offered", "8BITMIME", "Subject: x\r\n\r\nZoë\r\n", spool.Sent, "queued", "Zoë"},
	}
	for _, c := range cases {
		s := newScripted(t, nil, nil)
		s.exts = c.exts
		tr := hostileTransport(s.addr, "none", nil)
		e := env1("a@example.net")
		e.Size = int64(len(c.msg))
		r := tr.Deliver(context.Background(), tr.Route("a@example.net"), e, []int{0}, strings.NewReader(c.msg))[0]
		tr.CloseIdle()
		if r.Status != c.want || !strings.Contains(r.Reply, c.inReply) {
			t.Errorf("%s: %v %q", c.name, r.Status, r.Reply)
			continue
		}
		s.mu.Lock()
		data := s.data
		s.mu.Unlock()
		if c.want != spool.Sent {
			if len(data) != 0 {
				t.Errorf("%s: sent although it could not be converted: %q", c.name, data)
			}
			continue
		}
		if len(data) != 1 || !strings.Contains(data[0], c.sent) {
			t.Errorf("%s: server got %q, want %q in it", c.name, data, c.sent)
		}
		if c.exts == "HELP" && strings.IndexFunc(data[0], func(r rune) bool { return r >= 0x80 }) >= 0 {
			t.Errorf("%s: 8-bit bytes went to a server without 8BITMIME: %q", c.name, data[0])
		}
	}
}

// DSN parameters go on to a next hop that offers DSN (RFC 3461 5.2).
func TestDSNParametersPassedOn(t *testing.T) {
	var lines []string
	var mu sync.Mutex
	s := newScripted(t, nil, func(s *scripted, h *hconn, line string) bool {
		mu.Lock()
		lines = append(lines, line)
		mu.Unlock()
		return false
	})
	s.exts = "DSN"
	tr := hostileTransport(s.addr, "none", nil)
	e := env1("a@example.net", "b@example.net")
	e.Ret, e.EnvID = "HDRS", "QQ314159"
	e.DSN = map[string]spool.RcptDSN{"a@example.net": {Notify: []string{"SUCCESS", "FAILURE"}, ORcpt: "rfc822;A@example.net"}}
	for _, r := range tr.Deliver(context.Background(), tr.Route("a@example.net"), e, []int{0, 1}, strings.NewReader("Subject: t\r\n\r\nhi\r\n")) {
		if r.Status != spool.Sent {
			t.Fatalf("%+v", r)
		}
	}
	tr.CloseIdle()
	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	for _, want := range []string{"MAIL FROM:<s@example.org> RET=HDRS ENVID=QQ314159", "RCPT TO:<a@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;A@example.net", "RCPT TO:<b@example.net>\n"} {
		if !strings.Contains(all+"\n", want) {
			t.Errorf("the server did not hear %q:\n%s", want, all)
		}
	}
}
