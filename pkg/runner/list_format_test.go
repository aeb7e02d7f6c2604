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
