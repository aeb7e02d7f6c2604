package tls_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// On the submission config a message without Date:, Message-ID: or From:
// gets them (RFC 6409 8.1-8.3); on a gateway config it is spooled as sent.
func TestSubmissionCompletesHeader(t *testing.T) {
	data := filepath.Join(t.TempDir(), "bare.eml")
	os.WriteFile(data, []byte("Subject: bare\r\nTo: friend@remote.example\r\n\r\nno date, no id, no from\r\n.\r\n"), 0o644)
	s := newSite(t, "require_auth = true", "", "")
	addr := s.activate()
	out, code, _ := swaks(t, addr, "--tls", "--tls-verify", "--tls-ca-path", s.ca.PEMFile, "--auth", "PLAIN", "--auth-user", "alice",
		"--auth-password", users["alice"], "--from", "alice@"+host, "--to", "friend@remote.example", "--data", data)
	if code != 0 {
		t.Fatalf("swaks: exit %d\n%s", code, out)
	}
	for _, msg := range s.spooled() {
		header, _, _ := strings.Cut(msg, "\r\n\r\n")
		header += "\r\n"
		for _, want := range []string{`(?m)^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r$`,
			`(?m)^Message-ID: <\d{14}\.[0-9a-f]{16}@` + regexp.QuoteMeta(host) + `>\r$`, `(?m)^From: <alice@` + regexp.QuoteMeta(host) + `>\r$`} {
			if !regexp.MustCompile(want).MatchString(header) {
				t.Errorf("submitted header lacks %s:\n%s", want, header)
			}
		}
		if !strings.HasSuffix(msg, "\r\n\r\nno date, no id, no from\r\n") {
			t.Errorf("body changed: %q", msg)
		}
	}

	g := newSite(t, "", "", "")
	gaddr := g.activate()
	if out, code, _ := swaks(t, gaddr, "--from", "someone@remote.example", "--to", "alice@"+host, "--data", data); code != 0 {
		t.Fatalf("swaks to the gateway: exit %d\n%s", code, out)
	}
	for _, msg := range g.spooled() {
		if strings.Contains(msg, "Message-ID:") || strings.Contains(msg, "\r\nDate:") {
			t.Errorf("the gateway added header fields:\n%s", msg)
		}
	}
}
