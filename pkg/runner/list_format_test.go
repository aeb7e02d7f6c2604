package runner

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// A recipient never tried has no last_attempt in -list -json (it was
// "0001-01-01T00:00:00Z"), and one message is "1 message" (both found by
// an interop run).
func TestListFormats(t *testing.T) {
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	items := []Item{{ID: "660e11238526f00474a", Arrived: now.Add(-time.Minute), NextTry: now,
		Rcpts: []RcptItem{{Addr: "a@b.example", State: "pending"}, {Addr: "c@d.example", State: "deferred", Attempts: 1, LastTry: now}}}}
	var j bytes.Buffer
	if err := WriteJSON(&j, items); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(j.String(), `"last_attempt"`); n != 1 || strings.Contains(j.String(), "0001-01-01") {
		t.Errorf("JSON:\n%s", j.String())
	}
	var txt bytes.Buffer
	WriteText(&txt, items, now)
	if !strings.HasSuffix(txt.String(), "-- 1 message\n") {
		t.Errorf("text:\n%s", txt.String())
	}
}

// The pass summary counts follow-up passes without saying "5 due of 3
// queued", and gets its plurals right.
func TestSummaryWording(t *testing.T) {
	st := &Stats{Scanned: 3, Due: 5, Sent: 1, Bounces: 1, Errors: 1}
	got := st.Summary()
	for _, want := range []string{"3 messages in the queue, 5 messages handled (follow-up passes included)", "1 DSN queued", "1 error"} {
		if !strings.Contains(got, want) {
			t.Errorf("Summary() = %q, lacks %q", got, want)
		}
	}
	if strings.Contains(got, "due of") || strings.Contains(got, "1 DSNs") || strings.Contains(got, "1 errors") {
		t.Errorf("Summary() = %q", got)
	}
}
